"""Tests of posgate's own Standard Webhooks endpoint and its recorded partner payloads."""
