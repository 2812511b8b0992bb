"""Integration tests of the gRPC service runtime."""
