"""Vendor adapters: one folder per vendor, pure functions, registered in `registry`."""
