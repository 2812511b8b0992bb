"""The gateway's HTTP surface: vendor webhooks, bulk imports and the admin API (ASGI)."""
