"""Persistence: the async engine, the shared tables and the migrations."""
