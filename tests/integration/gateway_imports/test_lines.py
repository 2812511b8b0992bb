"""Streamed bodies split into numbered rows however the chunks fall."""

from __future__ import annotations

import pytest

from posgate.gateway.imports.lines import decode_rows
from tests.integration.gateway_imports.cases import CSV_BODY, NDJSON_BODY, in_chunks


async def rows_of(body_format: str, chunks) -> list[tuple[int, str]]:
    return [(row.number, row.reason) async for rows in decode_rows(body_format, chunks) for row in rows]


@pytest.mark.parametrize("size", [1, 2, 5, 64, 1 << 20])
async def test_chunk_boundaries_do_not_change_rows(size: int) -> None:
    whole_ndjson = await rows_of("ndjson", in_chunks(NDJSON_BODY, 1 << 20))
    whole_csv = await rows_of("csv", in_chunks(CSV_BODY, 1 << 20))
    assert await rows_of("ndjson", in_chunks(NDJSON_BODY, size)) == whole_ndjson
    assert await rows_of("csv", in_chunks(CSV_BODY, size)) == whole_csv
    assert len(whole_ndjson) == 13
    assert len(whole_csv) == 9


async def test_overlong_lines_and_bad_bytes_are_row_errors_and_the_rest_goes_on() -> None:
    body = b'{"a":1}\n' + b"x" * 70_000 + b'\n\xff\xfe{"b":2}\n{"c":3}'
    assert await rows_of("ndjson", in_chunks(body, 4096)) == [
        (1, ""),
        (2, "line_too_long"),
        (3, "invalid_utf8"),
        (4, ""),
    ]


async def test_an_unterminated_quote_reports_every_line_it_swallowed() -> None:
    body = b'kind,sku\ncount,"v1\ncount,v2\n'
    assert await rows_of("csv", in_chunks(body, 3)) == [(2, "malformed_csv"), (3, "malformed_csv")]
