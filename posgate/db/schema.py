"""Every table posgate owns, gathered on one `metadata` for Alembic.

Shared tables live in `posgate.db.tables`; each service imports its own table module here
so that `alembic revision --autogenerate` sees the whole schema.
"""

from __future__ import annotations

from posgate.db.tables import metadata
from posgate.gateway import tables as gateway_tables
from posgate.services.inventory import tables as inventory_tables

__all__ = ["gateway_tables", "inventory_tables", "metadata"]
