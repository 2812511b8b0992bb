"""Stored keys never change: the fast key text is `json.dumps`'s, and known keys stay as stored."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from posgate.gateway.adapters import keys
from posgate.gateway.adapters.base import EventIdentity
from posgate.gateway.adapters.commands import canonical_order_id, entity_key
from posgate.gateway.dedupe import dedupe_key


@given(st.lists(st.text(), max_size=8))
def test_material_of_texts_is_json_dumps(parts: list[str]) -> None:
    # Any text: non-ASCII, control characters, quotes, backslashes, lone surrogates.
    assert keys.material(parts) == json.dumps(parts)


@given(st.lists(st.one_of(st.text(), st.integers(), st.none(), st.booleans()), max_size=6))
def test_material_of_other_values_is_json_dumps(parts: list[object]) -> None:
    assert keys.material(parts) == json.dumps(parts)


def test_a_str_subclass_is_encoded_as_json_dumps_does() -> None:
    class Name(str):
        __slots__ = ()

    assert keys.material([Name("a\u00e9"), "b"]) == json.dumps([Name("a\u00e9"), "b"])


def test_keys_stored_before_the_fast_material_still_match() -> None:
    # Computed by the code that used json.dumps directly (before 2026-11-24 09:50 UTC).
    identity = EventIdentity("evt-1", "inventory_count:X", None, "M1", None)
    assert (
        dedupe_key("square", identity, b"{}")
        == "event:39c91b3fabf47ab11280a51b9f201baf3904adacb08d34fd1d67ebcf31ba445a"
    )
    assert (
        entity_key("shopify", "shop.myshopify.com", "movement", "line-\u00e9-7")
        == "shopify:fbbff895b2fc26deb247d242d58816f7556129db"
    )
    assert canonical_order_id("toast", "R-1", "820982734982734987") == "ccda1a63-a8af-5118-bc08-9e0501856b6e"
