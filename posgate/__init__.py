"""posgate: a gRPC integration gateway for retail and restaurant point-of-sale systems."""

__version__ = "0.1.0"
