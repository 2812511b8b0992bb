"""Benchmarks run as processes against real PostgreSQL and RabbitMQ; see docs/benchmarks.md."""
