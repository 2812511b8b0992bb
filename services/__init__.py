"""posgate.services."""
