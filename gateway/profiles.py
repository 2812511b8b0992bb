"""Validation profiles: how strictly each channel (provider) and account (tenant) is checked.

Adapters attach warnings to the commands they build (`CanonicalCommand.warnings`): data they
had to round, lines they could not move, fields a webhook lacks. A profile turns each warning
into a rule decision: `reject` fails the whole delivery (class `validation`, the rule as
reason), `warn` accepts it and records the warning, `off` ignores it. A rule a profile does not
name, and every rule when no profile is stored, is `warn`. Lookup order: the profile of
(provider, tenant), then the provider-wide profile (tenant `*`), then the default.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, String, Table, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db.tables import Id, UtcDateTime, metadata
from posgate.gateway.adapters.base import CanonicalCommand, PayloadError

LOG = logging.getLogger("posgate.gateway.profiles")
ANY_TENANT = "*"


class Decision(StrEnum):
    """What a rule does with the warning it matches."""

    REJECT = "reject"
    WARN = "warn"
    OFF = "off"


class Rule(StrEnum):
    """Warning codes the adapters emit, each a rule a profile can set."""

    ORDER_LINES_NOT_IN_WEBHOOK = "order_lines_not_in_webhook"
    FRACTIONAL_QUANTITY_ROUNDED = "fractional_quantity_rounded"
    LINE_WITHOUT_VARIANT = "line_without_variant"
    STOCK_NOT_TRACKED = "stock_not_tracked"
    UNCLASSIFIED_WARNING = "unclassified_warning"


RULES = frozenset(Rule)
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Adapters that word their warnings for humans; each pattern names the rule it stands for.
_PATTERNS = (
    (re.compile(r"rounded down to"), Rule.FRACTIONAL_QUANTITY_ROUNDED),
    (re.compile(r"has no product variant"), Rule.LINE_WITHOUT_VARIANT),
    (re.compile(r"has no inventory location|stock not tracked"), Rule.STOCK_NOT_TRACKED),
)

validation_profiles = Table(
    "gw_validation_profiles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("rules", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("provider", "tenant", name="uq_gw_validation_profiles_provider_tenant"),
)


@dataclass(frozen=True, slots=True)
class ValidationProfile:
    """The rule decisions of one provider and tenant (`*`: every tenant of the provider)."""

    provider: str
    tenant: str
    rules: Mapping[str, Decision] = field(default_factory=dict)

    def decision(self, rule: str) -> Decision:
        """The decision for `rule`; `warn` when the profile does not name it."""
        return self.rules.get(rule, Decision.WARN)


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning of one command and the rule it fell under."""

    rule: str
    warning: str
    idempotency_key: str


class ProfileRejection(PayloadError):
    """A delivery whose warnings a profile rejects; the reason is the first rejecting rule."""


def default_profile(provider: str, tenant: str) -> ValidationProfile:
    """The profile used when none is stored: every rule `warn`."""
    return ValidationProfile(provider, tenant, {})


def rule_of(warning: str) -> str:
    """The rule a warning falls under: its code, or the rule its wording matches."""
    code = warning.split(":", 1)[0].strip()
    if _CODE.match(code):
        return code
    for pattern, rule in _PATTERNS:
        if pattern.search(warning):
            return rule.value
    return Rule.UNCLASSIFIED_WARNING.value


def apply_profile(
    profile: ValidationProfile, commands: Sequence[CanonicalCommand]
) -> tuple[list[CanonicalCommand], list[Finding], list[Finding]]:
    """Judge every command's warnings: (kept commands, warnings to record, rejections).

    Kept commands carry only their `warn` warnings; a command with a rejected warning is not
    kept. The caller fails the whole delivery when there is any rejection.
    """
    kept: list[CanonicalCommand] = []
    warned: list[Finding] = []
    rejected: list[Finding] = []
    for command in commands:
        keep: list[str] = []
        refused = False
        for warning in command.warnings:
            rule = rule_of(warning)
            finding = Finding(rule, warning, command.idempotency_key)
            decision = profile.decision(rule)
            if decision is Decision.REJECT:
                rejected.append(finding)
                refused = True
            elif decision is Decision.WARN:
                warned.append(finding)
                keep.append(warning)
        if not refused:
            kept.append(replace(command, warnings=tuple(keep)))
    return kept, warned, rejected


async def load_profile(session: AsyncSession, provider: str, tenant: str | None) -> ValidationProfile:
    """The profile that applies to (provider, tenant); see the module docstring for the order."""
    candidates = [ANY_TENANT] if tenant is None else [tenant, ANY_TENANT]
    query = select(validation_profiles).where(
        validation_profiles.c.provider == provider, validation_profiles.c.tenant.in_(candidates)
    )
    rows = {row.tenant: row for row in (await session.execute(query)).all()}
    for candidate in candidates:
        if candidate in rows:
            return _profile(rows[candidate].provider, rows[candidate].tenant, rows[candidate].rules)
    return default_profile(provider, tenant or ANY_TENANT)


async def list_profiles(
    session: AsyncSession, provider: str | None = None, tenant: str | None = None
) -> list[ValidationProfile]:
    """Stored profiles, optionally of one provider and tenant, ordered by (provider, tenant)."""
    query = select(validation_profiles)
    if provider is not None:
        query = query.where(validation_profiles.c.provider == provider)
    if tenant is not None:
        query = query.where(validation_profiles.c.tenant == tenant)
    query = query.order_by(validation_profiles.c.provider, validation_profiles.c.tenant)
    return [_profile(row.provider, row.tenant, row.rules) for row in (await session.execute(query)).all()]


async def save_profile(session: AsyncSession, profile: ValidationProfile, now: datetime) -> None:
    """Insert or replace the profile of (provider, tenant); the caller commits.

    Raises:
        ValueError: An unknown rule, or an empty provider or tenant.

    """
    unknown = sorted(set(profile.rules) - {rule.value for rule in RULES})
    if unknown:
        raise ValueError(f"unknown rules {', '.join(unknown)}")
    if not (profile.provider and profile.tenant):
        raise ValueError("provider and tenant are required")
    rules = {rule: Decision(decision).value for rule, decision in sorted(profile.rules.items())}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(validation_profiles).values(
        provider=profile.provider, tenant=profile.tenant, rules=rules, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["provider", "tenant"],
            set_={"rules": statement.excluded.rules, "updated_at": statement.excluded.updated_at},
        )
    )


async def screen(
    session: AsyncSession, provider: str, tenant: str | None, commands: Sequence[CanonicalCommand]
) -> list[CanonicalCommand]:
    """The pipeline's hook: apply the stored profile, log warnings, refuse on a rejection.

    Raises:
        ProfileRejection: A warning falls under a `reject` rule (class `validation`).

    """
    if not any(command.warnings for command in commands):
        return list(commands)
    profile = await load_profile(session, provider, tenant)
    kept, warned, rejected = apply_profile(profile, commands)
    if rejected:
        first = rejected[0]
        raise ProfileRejection(first.rule, f"{first.warning} (rejected by the {provider} profile)")
    for finding in warned:
        LOG.warning(
            "gateway warning provider=%s tenant=%s rule=%s key=%s detail=%s",
            provider,
            tenant,
            finding.rule,
            finding.idempotency_key,
            finding.warning,
        )
    return kept


def _profile(provider: str, tenant: str, rules: object) -> ValidationProfile:
    stored = rules if isinstance(rules, dict) else {}
    return ValidationProfile(provider, tenant, {str(k): Decision(str(v)) for k, v in stored.items()})
