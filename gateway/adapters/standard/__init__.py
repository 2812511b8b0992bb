"""posgate's own canonical JSON webhook, signed per the Standard Webhooks specification."""

from __future__ import annotations

from posgate.gateway.adapters.standard.adapter import StandardAdapter

__all__ = ["StandardAdapter"]
