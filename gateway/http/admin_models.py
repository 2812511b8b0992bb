"""Request and response bodies of the admin API (`admin_docs` builds its OpenAPI part from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["tenant", "store", "sku"]
DecisionName = Literal["reject", "warn", "off"]


class ErrorBody(BaseModel):
    """Every error answer: a stable `error` class and a `reason` (never a secret)."""

    error: str
    reason: str


class MappingModel(BaseModel):
    """One vendor id → canonical id mapping (`vendor_id` empty for a tenant mapping)."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=64)
    merchant_id: str = Field(min_length=1, max_length=255)
    kind: Kind
    vendor_id: str = Field("", max_length=255)
    canonical_id: str = Field(min_length=1, max_length=255)


class MappingKey(BaseModel):
    """Which mapping to delete."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1)
    merchant_id: str = Field(min_length=1)
    kind: Kind
    vendor_id: str = ""


class MappingList(BaseModel):
    """Mappings of one (provider, merchant)."""

    mappings: list[MappingModel]


class CountResult(BaseModel):
    """How many rows a bulk change touched."""

    count: int


class FailureOut(BaseModel):
    """A failure as an operator sees it; `affected_stores` counts its (provider, tenant, reason) group."""

    id: int
    failure_class: str
    reason: str
    detail: str
    provider: str
    topic: str
    tenant_id: str | None
    store_id: str | None
    raw_payload_id: int | None
    command_id: int | None
    created_at: datetime
    replayed_at: datetime | None
    resolved: bool
    affected_stores: int


class FailureList(BaseModel):
    """Failures, most impactful first."""

    failures: list[FailureOut]


class RawPayloadOut(BaseModel):
    """A stored delivery; the body as text when it is UTF-8, else as Base64."""

    id: int
    provider: str
    topic: str
    url: str
    headers: dict[str, str]
    received_at: datetime
    outcome: str
    body_text: str | None
    body_base64: str | None


class FailureDetail(BaseModel):
    """One failure with the delivery it came from (none for a command that failed to send)."""

    failure: FailureOut
    payload: RawPayloadOut | None


class FailureQuery(BaseModel):
    """Which open failures to replay; the same names as the list endpoint's parameters."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    failure_class: str | None = Field(None, alias="class")
    provider: str | None = None
    tenant: str | None = None
    store: str | None = None
    since: datetime | None = None
    limit: int = Field(100, ge=1, le=10_000)


class ReplayRequest(BaseModel):
    """Replay the listed failures, or every open failure matching `filter`."""

    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(None, min_length=1, max_length=10_000)
    filter: FailureQuery | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> ReplayRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of ids and filter")
        return self


class ReplayItem(BaseModel):
    """What replaying one failure did."""

    failure_id: int
    outcome: str
    created_command_ids: list[int]
    failure_class: str | None
    reason: str


class ReplayResponse(BaseModel):
    """Per-failure results of a replay, in the order replayed."""

    results: list[ReplayItem]
    succeeded: int
    failed: int


class ProfileModel(BaseModel):
    """A validation profile: a decision per rule (unnamed rules are `warn`)."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=64)
    tenant: str = Field(min_length=1, max_length=255, description="A tenant, or `*` for every tenant.")
    rules: dict[str, DecisionName]


class ProfileList(BaseModel):
    """Stored profiles and the rules a profile can set."""

    profiles: list[ProfileModel]
    known_rules: list[str]


class PolicyModel(BaseModel):
    """The unmapped-SKU policy of a channel (no `merchant_id`) or of one account."""

    model_config = ConfigDict(extra="forbid")
    provider: str = Field(min_length=1, max_length=64)
    merchant_id: str = Field("", max_length=255, description="Empty: every merchant of the provider.")
    unmapped_sku: Literal["review", "create"] = Field(
        description="`review`: hold as a mapping failure; `create`: map the vendor item id to itself."
    )


class PolicyList(BaseModel):
    """Stored unmapped-SKU policies (none stored means `review`)."""

    policies: list[PolicyModel]
