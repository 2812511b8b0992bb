"""posgate.clients."""
