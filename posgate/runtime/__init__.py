"""The gRPC service runtime: one way to start, secure, observe and stop every posgate server.

Submodules are imported directly (`posgate.runtime.server`, `posgate.runtime.correlation`) so
that `correlation`, which outbox and consumers read, stays importable without grpc.
"""
