"""The contract every vendor adapter honours, run over each vendor's recorded fixtures.

Which adapters: every one in `registry.ADAPTERS`. Each is run through the same
inputs built from its test folder's `cases.py` (see `contract_cases.py` and
docs/adapters.md): valid, tampered, unsigned, wrongly signed, stale, duplicated and
malformed deliveries. A new vendor plugs in with `tests/unit/gateway/adapters/<name>/`
holding `fixtures/*.json` and a `cases.py`; a registered adapter without one fails here.
"""

from __future__ import annotations

import importlib

import pytest
from google.protobuf import descriptor_pool

from posgate.gateway.adapters.base import Adapter, CanonicalCommand, PayloadError, SignatureError, Topic
from posgate.gateway.adapters.registry import ADAPTERS
from tests.unit.gateway.adapters.contract_cases import VendorCases

TOPICS = {value for name, value in vars(Topic).items() if not name.startswith("_")}
POOL = descriptor_pool.Default()


ALL = dict(ADAPTERS)
NAMES = sorted(ALL)


def cases_of(name: str) -> VendorCases:
    """The vendor's `CASES`; a missing `cases.py` fails the contract rather than skipping it."""
    try:
        module = importlib.import_module(f"tests.unit.gateway.adapters.{name}.cases")
    except ModuleNotFoundError:
        pytest.fail(f"{name} has no tests/unit/gateway/adapters/{name}/cases.py (see docs/adapters.md)")
    cases: VendorCases = module.CASES
    return cases


def signature_error(cases: VendorCases, request, secrets, now=None) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        cases.adapter.verify_signature(request, secrets, cases.now if now is None else now)
    error = caught.value
    assert error.failure_class == "auth"
    for secret in (cases.secret, cases.rotated_out_secret):
        assert secret.decode(errors="replace") not in str(error), "a secret was echoed"
    return error


def assert_well_formed(command: CanonicalCommand, adapter: Adapter) -> None:
    service, _, method = command.target.partition("/")
    rpc = POOL.FindServiceByName(service).FindMethodByName(method)
    assert command.message.DESCRIPTOR.full_name == rpc.input_type.full_name
    meta = command.message.meta
    assert command.idempotency_key
    assert meta.idempotency_key == command.idempotency_key
    assert meta.source.provider == adapter.name
    assert command.tenant_id
    assert meta.source.tenant_id == command.tenant_id


def test_registry_names_are_the_adapters_names() -> None:
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name


@pytest.mark.parametrize("name", NAMES)
def test_the_vendor_folder_follows_the_convention(name: str) -> None:
    cases = cases_of(name)
    adapter = ALL[name]
    assert type(cases.adapter) is type(adapter)
    assert cases.adapter.name == name
    assert adapter.topics and adapter.topics <= TOPICS
    assert cases.topic in adapter.topics
    assert cases.valid, "at least one documented delivery"
    assert cases.malformed, "at least one malformed delivery"
    for fixture in (*cases.valid, *cases.malformed):
        assert (cases.fixtures / fixture).is_file(), fixture


@pytest.mark.parametrize("name", NAMES)
def test_valid_deliveries_verify_parse_and_map(name: str) -> None:
    cases = cases_of(name)
    commanded = 0
    for fixture in cases.valid:
        request = cases.delivery(fixture)
        cases.adapter.verify_signature(request, [cases.secret], cases.now)
        # While a secret is rotated both are configured; the one that signed must still match.
        cases.adapter.verify_signature(request, [cases.rotated_out_secret, cases.secret], cases.now)
        event = cases.adapter.parse(request)
        assert event.identity.entity, fixture
        commands = cases.adapter.to_canonical_commands(event, cases.mapping)
        for command in commands:
            assert_well_formed(command, cases.adapter)
        assert len({command.idempotency_key for command in commands}) == len(commands)
        commanded += bool(commands)
    assert commanded, "at least one valid fixture must produce a command"


@pytest.mark.parametrize("name", NAMES)
def test_a_tampered_body_is_refused(name: str) -> None:
    cases = cases_of(name)
    for fixture in cases.valid:
        original = cases.body(fixture)
        tampered = cases.tamper(original)
        assert tampered != original
        request = cases.request(tampered, cases.sign(original, cases.secret, cases.now))
        assert signature_error(cases, request, [cases.secret]).reason == "signature_mismatch", fixture


@pytest.mark.parametrize("name", NAMES)
def test_a_delivery_signed_with_another_secret_is_refused(name: str) -> None:
    cases = cases_of(name)
    request = cases.delivery(cases.valid[0])
    assert signature_error(cases, request, [cases.rotated_out_secret]).reason == "signature_mismatch"
    # No secret configured: refused as auth; the reason may say it is a configuration gap.
    signature_error(cases, request, [])


@pytest.mark.parametrize("name", NAMES)
def test_an_unsigned_delivery_is_refused(name: str) -> None:
    cases = cases_of(name)
    body = cases.body(cases.valid[0])
    headers = {
        k: v
        for k, v in cases.sign(body, cases.secret, cases.now).items()
        if k.lower() != cases.signature_header
    }
    assert signature_error(cases, cases.request(body, headers), [cases.secret]).reason == "missing_signature"


@pytest.mark.parametrize("name", NAMES)
def test_a_signature_that_is_not_one_is_malformed(name: str) -> None:
    cases = cases_of(name)
    body = cases.body(cases.valid[0])
    headers = {k.lower(): v for k, v in cases.sign(body, cases.secret, cases.now).items()}
    headers[cases.signature_header] = "%%% not a signature %%%"
    assert (
        signature_error(cases, cases.request(body, headers), [cases.secret]).reason == "malformed_signature"
    )


# Toast signs no time (its replays are caught by the signed event guid), so it has no stale case.
TIMED = [name for name in NAMES if cases_of(name).stale_now is not None]


@pytest.mark.parametrize("name", TIMED)
def test_a_stale_delivery_is_refused(name: str) -> None:
    cases = cases_of(name)
    assert cases.stale_now is not None
    for fixture in cases.valid:
        error = signature_error(cases, cases.delivery(fixture), [cases.secret], cases.stale_now)
        assert error.reason == "timestamp_stale", fixture


@pytest.mark.parametrize("name", NAMES)
def test_a_duplicated_delivery_has_the_same_identity_and_keys(name: str) -> None:
    cases = cases_of(name)
    for fixture in cases.valid:
        first, again = (cases.adapter.parse(cases.delivery(fixture)) for _ in range(2))
        assert first.identity == again.identity, fixture
        commands = [cases.adapter.to_canonical_commands(event, cases.mapping) for event in (first, again)]
        assert [c.idempotency_key for c in commands[0]] == [c.idempotency_key for c in commands[1]]
        serialised = [[c.message.SerializeToString(deterministic=True) for c in each] for each in commands]
        assert serialised[0] == serialised[1], fixture


@pytest.mark.parametrize("name", NAMES)
def test_a_malformed_body_is_a_validation_failure(name: str) -> None:
    cases = cases_of(name)
    for fixture in cases.malformed:
        request = cases.delivery(fixture)
        # Signed by the sender, so it authenticates: the fault is the payload's.
        cases.adapter.verify_signature(request, [cases.secret], cases.now)
        with pytest.raises(PayloadError) as caught:
            cases.adapter.parse(request)
        assert caught.value.failure_class == "validation", fixture
    garbage = cases.request(b"\x00 not json", cases.sign(cases.body(cases.valid[0]), cases.secret, cases.now))
    with pytest.raises(PayloadError):
        cases.adapter.parse(garbage)
