"""The inventory service: stock ledger, reservations and live stock streams."""
