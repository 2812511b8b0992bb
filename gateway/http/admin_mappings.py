"""The admin API's mappings: vendor id → canonical id rows, and unmapped-SKU policies."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from pydantic import TypeAdapter, ValidationError
from starlette.routing import Route

from posgate.gateway import mapping_policies, mappings
from posgate.gateway.http import admin_docs
from posgate.gateway.http import admin_models as m
from posgate.gateway.http.admin_calls import AdminError, Call, endpoint, invalid, json_body, query, read_body

CSV_HEADER = ["provider", "merchant_id", "kind", "vendor_id", "canonical_id"]
_MAPPINGS = TypeAdapter(list[m.MappingModel])
_KEYS = TypeAdapter(list[m.MappingKey])

OPENAPI_PATHS = admin_docs.MAPPING_PATHS


async def list_mapping_rows(call: Call) -> m.MappingList:
    """`GET /v1/admin/mappings?provider=&merchant_id=&kind=`."""
    provider, merchant, kind = (query(call, name) for name in ("provider", "merchant_id", "kind"))
    if provider is None or merchant is None:
        raise AdminError(400, "bad_request", "provider_and_merchant_id_required")
    if kind is not None and kind not in {"tenant", "store", "sku"}:
        raise AdminError(400, "bad_request", "unknown_kind")
    async with call.ctx.sessions() as session:
        rows = await mappings.list_mappings(session, provider, merchant, kind)
    call.details.update(provider=provider, merchant_id=merchant, count=len(rows))
    return m.MappingList(mappings=[m.MappingModel.model_validate(asdict(row)) for row in rows])


def _csv_rows(body: bytes) -> list[m.MappingModel]:
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    except UnicodeDecodeError:
        raise AdminError(400, "bad_request", "csv_not_utf8") from None
    if [name.strip() for name in reader.fieldnames or []] != CSV_HEADER:
        raise AdminError(400, "bad_request", "csv_header_must_be_" + ",".join(CSV_HEADER))
    rows = []
    for number, row in enumerate(reader, start=2):
        try:
            rows.append(m.MappingModel.model_validate({k.strip(): (v or "").strip() for k, v in row.items()}))
        except (ValidationError, AttributeError) as error:
            if isinstance(error, ValidationError):
                raise invalid(error, f"line {number}: ") from None
            raise AdminError(400, "bad_request", f"csv_line_{number}_malformed") from None
    return rows


async def upsert_mappings(call: Call) -> m.CountResult:
    """`PUT /v1/admin/mappings`: a JSON list of mappings, or a CSV file with a header."""
    if call.request.headers.get("content-type", "").startswith("text/csv"):
        rows = _csv_rows(await read_body(call))
    else:
        try:
            rows = _MAPPINGS.validate_python(await json_body(call))
        except ValidationError as error:
            raise invalid(error) from None
    entries = [mappings.MappingEntry(**row.model_dump()) for row in rows]
    async with call.ctx.sessions() as session:
        try:
            count = await mappings.upsert(session, entries, call.ctx.clock())
        except ValueError as error:
            raise AdminError(422, "invalid_body", str(error)[:300]) from None
        await session.commit()
    call.details.update(count=count)
    return m.CountResult(count=count)


async def delete_mapping_rows(call: Call) -> m.CountResult:
    """`DELETE /v1/admin/mappings`: a JSON list of keys."""
    try:
        keys = _KEYS.validate_python(await json_body(call))
    except ValidationError as error:
        raise invalid(error) from None
    groups: dict[tuple[str, str, str], list[str]] = {}
    for key in keys:
        groups.setdefault((key.provider, key.merchant_id, key.kind), []).append(key.vendor_id)
    count = 0
    async with call.ctx.sessions() as session:
        for (provider, merchant, kind), vendor_ids in groups.items():
            count += await mappings.delete_mappings(session, provider, merchant, kind, vendor_ids)
        await session.commit()
    call.details.update(count=count)
    return m.CountResult(count=count)


async def list_policy_rows(call: Call) -> m.PolicyList:
    """`GET /v1/admin/mapping-policies?provider=`."""
    async with call.ctx.sessions() as session:
        stored = await mapping_policies.list_policies(session, query(call, "provider"))
    call.details.update(count=len(stored))
    return m.PolicyList(policies=[m.PolicyModel.model_validate(asdict(entry)) for entry in stored])


async def put_policy(call: Call) -> m.PolicyModel:
    """`PUT /v1/admin/mapping-policies`: a channel's (no `merchant_id`) or an account's policy."""
    try:
        body = m.PolicyModel.model_validate(await json_body(call))
    except ValidationError as error:
        raise invalid(error) from None
    entry = mapping_policies.PolicyEntry(body.provider, body.merchant_id, body.unmapped_sku)
    async with call.ctx.sessions() as session:
        await mapping_policies.set_policy(session, entry, call.ctx.clock())
        await session.commit()
    call.details.update(provider=body.provider, merchant_id=body.merchant_id or "*", policy=body.unmapped_sku)
    return body


ROUTES = [
    Route("/v1/admin/mappings", endpoint("mappings.list", list_mapping_rows), methods=["GET"]),
    Route("/v1/admin/mappings", endpoint("mappings.upsert", upsert_mappings), methods=["PUT"]),
    Route("/v1/admin/mappings", endpoint("mappings.delete", delete_mapping_rows), methods=["DELETE"]),
    Route("/v1/admin/mapping-policies", endpoint("policies.list", list_policy_rows), methods=["GET"]),
    Route("/v1/admin/mapping-policies", endpoint("policies.put", put_policy), methods=["PUT"]),
]
