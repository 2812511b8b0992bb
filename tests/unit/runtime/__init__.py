"""Unit tests of the gRPC service runtime and the domain errors."""
