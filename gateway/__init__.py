"""posgate.gateway."""
