"""Every table posgate owns, gathered on one `metadata` for Alembic.

Shared tables live in `posgate.db.tables`; each service imports its own table module here
so that `alembic revision --autogenerate` sees the whole schema.
"""

from __future__ import annotations

from posgate.db.tables import metadata
from posgate.gateway import audit as gateway_audit
from posgate.gateway import profiles as gateway_profiles
from posgate.gateway import tables as gateway_tables
from posgate.gateway.imports import tables as import_tables
from posgate.services.inventory import tables as inventory_tables

__all__ = [
    "gateway_audit",
    "gateway_profiles",
    "gateway_tables",
    "import_tables",
    "inventory_tables",
    "metadata",
]
