"""Unit tests of the vendor adapters and the contract every one of them honours."""
