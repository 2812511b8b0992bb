"""The returns service: return authorisation, restock and register reconciliation."""
