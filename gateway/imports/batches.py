"""Good import rows → canonical commands, with keys derived from content only.

Rows are grouped per (kind, store) — products per currency — into commands of at most
`batch_size` lines. Each line's idempotency key hashes (provider, tenant, kind, store, SKU,
version or count time / the seller's delta key / the product's content), never the job, so
the inventory service applies a line once however often the file is uploaded. A command's
key hashes the keys of its lines: the same file batched the same way yields the same
commands, which `gw_commands` stores once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.message import Message

from posgate.contracts import catalog, inventory
from posgate.contracts.common import command_meta, money, pb, timestamp
from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.adapters.commands import APPLY_MOVEMENTS, SET_COUNTS, UPSERT_ITEMS
from posgate.gateway.imports.rows import CountRow, DeltaRow, ImportRow, ProductRow

UPSERT_PRICE_LIST = f"{catalog.SERVICE_NAME}/UpsertPriceList"


def content_key(prefix: str, *parts: str) -> str:
    """`prefix` + a hash of `parts`; the tuple's repr is unambiguous, so no two lists collide."""
    return prefix + hashlib.blake2b(repr(parts).encode(), digest_size=20).hexdigest()


@dataclass(frozen=True, slots=True)
class ImportOrigin:
    """Whose upload the rows come from."""

    provider: str
    tenant_id: str
    merchant_id: str
    received_at: datetime


@dataclass(slots=True)
class _Batch:
    kind: str
    group: str  # the store of counts and deltas, the currency of products
    message: Message
    prices: list[catalog.pb.PriceEntry] = field(default_factory=list)
    lines: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


class Batcher:
    """Collects rows and hands out full commands; `drain` also closes partial batches."""

    def __init__(self, origin: ImportOrigin, batch_size: int = 500) -> None:
        """Commands of at most `batch_size` lines each."""
        self._origin = origin
        self._size = batch_size
        self._open: dict[tuple[str, str], _Batch] = {}
        self._ready: list[CanonicalCommand] = []
        self._received = timestamp(origin.received_at)
        self._prefix = f"{origin.provider}:"

    def add(self, row: ImportRow) -> None:
        """Add one validated row to its batch."""
        if isinstance(row, CountRow):
            batch = self._batch("count", row.store, inventory.pb.SetCountsRequest)
            self._add_count(batch, row)
        elif isinstance(row, DeltaRow):
            batch = self._batch("delta", row.store, inventory.pb.ApplyMovementsRequest)
            self._add_delta(batch, row)
        else:
            batch = self._batch("product", row.currency, catalog.pb.UpsertItemsRequest)
            self._add_product(batch, row)
        if batch.lines >= self._size:
            del self._open[(batch.kind, batch.group)]
            self._close(batch)

    def drain(self) -> list[CanonicalCommand]:
        """Every finished command, partial batches included; the batcher starts empty again."""
        for batch in self._open.values():
            self._close(batch)
        self._open.clear()
        ready, self._ready = self._ready, []
        return ready

    def _batch(self, kind: str, group: str, message_type: type[Message]) -> _Batch:
        batch = self._open.get((kind, group))
        if batch is None:
            batch = self._open[(kind, group)] = _Batch(kind, group, message_type())
        return batch

    def _key(self, batch: _Batch, *parts: str) -> str:
        key = content_key(self._prefix, self._origin.tenant_id, *parts)
        batch.digest.update(key.encode())
        batch.lines += 1
        return key

    def _stock_key(self, store: str, sku: str) -> dict[str, str]:
        return {"tenant_id": self._origin.tenant_id, "store_id": store, "sku": sku}

    def _add_count(self, batch: _Batch, row: CountRow) -> None:
        when = str(row.version) if row.version else row.counted_at.isoformat() if row.counted_at else ""
        key = self._key(batch, "count", row.store, row.sku, when)
        count = batch.message.counts.add(  # type: ignore[attr-defined]
            idempotency_key=key,
            key=self._stock_key(row.store, row.sku),
            on_hand=row.on_hand,
            source_version=row.version,
        )
        if row.counted_at is not None:
            count.counted_at.CopyFrom(timestamp(row.counted_at))

    def _add_delta(self, batch: _Batch, row: DeltaRow) -> None:
        movement = batch.message.movements.add(  # type: ignore[attr-defined]
            idempotency_key=self._key(batch, "movement", row.key),
            key=self._stock_key(row.store, row.sku),
            type=row.movement_type,
            delta=row.delta,
            reference=row.reference,
        )
        if row.occurred_at is not None:
            movement.occurred_at.CopyFrom(timestamp(row.occurred_at))

    def _add_product(self, batch: _Batch, row: ProductRow) -> None:
        variants = [part for sku, name in row.variants for part in (sku, name)]
        self._key(batch, "product", row.sku, str(row.version), row.name, str(row.price), *variants)
        item = batch.message.items.add(  # type: ignore[attr-defined]
            tenant_id=self._origin.tenant_id, sku=row.sku, name=row.name, active=True, version=row.version
        )
        for sku, name in row.variants:
            item.variants.add(variant_id=sku, sku=sku, name=name)
        batch.prices.append(catalog.pb.PriceEntry(sku=row.sku, price=money(row.price, row.currency)))

    def _close(self, batch: _Batch) -> None:
        store = "" if batch.kind == "product" else batch.group
        group = content_key("", self._origin.tenant_id, batch.kind, batch.group)[:24]
        key = f"{self._prefix}import:{group}:{batch.digest.hexdigest()[:24]}"
        meta = command_meta(key, self._source(store))
        batch.message.meta.CopyFrom(meta)  # type: ignore[attr-defined]
        target = {"count": SET_COUNTS, "delta": APPLY_MOVEMENTS, "product": UPSERT_ITEMS}[batch.kind]
        self._ready.append(CanonicalCommand(target, batch.message, key, self._origin.tenant_id, store))
        if batch.prices:
            self._ready.append(self._price_list(key, batch))

    def _price_list(self, items_key: str, batch: _Batch) -> CanonicalCommand:
        # The catalogue has no per-SKU price command: a batch's prices form a price list of
        # their own, named after the batch, so re-uploads replace it rather than add one.
        key = f"{items_key}:prices"
        prices = catalog.pb.PriceList(
            tenant_id=self._origin.tenant_id,
            price_list_id=f"seller-import:{items_key}",
            name=f"{self._origin.provider} seller import",
            currency_code=batch.group,
            entries=batch.prices,
        )
        request = catalog.pb.UpsertPriceListRequest(
            meta=command_meta(key, self._source("")), price_list=prices
        )
        return CanonicalCommand(UPSERT_PRICE_LIST, request, key, self._origin.tenant_id, "")

    def _source(self, store: str) -> pb.Source:
        source = pb.Source(
            provider=self._origin.provider,
            tenant_id=self._origin.tenant_id,
            merchant_id=self._origin.merchant_id,
            store_id=store,
        )
        source.received_at.CopyFrom(self._received)
        return source
