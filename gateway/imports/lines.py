"""Streamed bodies → numbered rows, without ever holding more than one chunk and one record.

NDJSON rows are numbered by line (1-based). CSV rows are numbered by the line their record
starts on, so the header is row 1 and the first data record usually row 2; a quoted field
may span lines. Blank lines are skipped but still counted, so numbers match an editor's.
Rows come in lists, one per received chunk: per-row async hops would cost more than parsing.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple

# A line longer than this is a row error; its bytes are dropped until the next newline.
MAX_LINE_BYTES = 64 * 1024
# Characters of a bad row kept in the error report.
RAW_KEPT = 512
# The C scanner behind `json.loads`, called directly: a third of the cost of a small line.
# (`scan_once` is set per instance and missing from the type stubs, hence `vars`.)
_SCAN: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder())["scan_once"]

# (line number, text without its line end, problem code or "")
RawLine = tuple[int, str, str]


class Row(NamedTuple):
    """One decoded row: its fields, or the reason it could not be decoded.

    Attributes:
        number: Row number as defined in the module docstring.
        fields: JSON values (NDJSON) or strings (CSV; empty cells left out).
        raw: The row's text, for the error report.
        reason: Empty for a decoded row, else a stable code (`malformed_json`, ...).
        detail: A human explanation of `reason`.

    """

    number: int
    fields: dict[str, Any]
    raw: str
    reason: str = ""
    detail: str = ""


async def split_lines(
    chunks: AsyncIterable[bytes], max_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[list[RawLine]]:
    """The complete physical lines of each chunk, decoded; CRLF and LF both end a line."""
    pending = b""
    number = 0
    overflow = False
    async for chunk in chunks:
        end = chunk.rfind(b"\n")
        if end < 0:
            pending += chunk
            if len(pending) > max_bytes:
                overflow, pending = True, b""
            continue
        data, pending = pending + chunk[:end], chunk[end + 1 :]
        lines = _decoded(number, data)
        number += len(lines)
        if overflow:
            overflow = False
            lines[0] = (lines[0][0], "", "line_too_long")
        yield lines
        if len(pending) > max_bytes:
            overflow, pending = True, b""
    if overflow:
        yield [(number + 1, "", "line_too_long")]
    elif pending:
        yield _decoded(number, pending)


def _decoded(before: int, data: bytes) -> list[RawLine]:
    try:
        texts = data.decode().split("\n")
    except UnicodeDecodeError:
        return [_line(before + i, part) for i, part in enumerate(data.split(b"\n"), 1)]
    return [
        (number, text[:-1] if text.endswith("\r") else text, "")
        for number, text in enumerate(texts, before + 1)
    ]


def _line(number: int, data: bytes) -> RawLine:
    data = data.removesuffix(b"\r")
    try:
        return (number, data.decode(), "")
    except UnicodeDecodeError:
        return (number, data.decode(errors="replace"), "invalid_utf8")


def ndjson_rows(lines: list[RawLine]) -> list[Row]:
    """One row per non-blank line; a line that is not a JSON object is a row error."""
    loads, scan = json.loads, _SCAN
    rows: list[Row] = []
    for number, text, problem in lines:
        if problem:
            rows.append(Row(number, {}, text[:RAW_KEPT], problem))
            continue
        if not text or text.isspace():
            continue
        try:
            value, end = scan(text, 0)
            if end != len(text):
                raise ValueError(end)
        except (ValueError, StopIteration):
            # The slow path accepts surrounding blanks and words the error for the report.
            try:
                value = loads(text)
            except ValueError as error:
                rows.append(Row(number, {}, text[:RAW_KEPT], "malformed_json", str(error)))
                continue
        if type(value) is dict:
            rows.append(Row(number, value, text))
        else:
            rows.append(Row(number, {}, text[:RAW_KEPT], "not_an_object", "each line must be a JSON object"))
    return rows


class _Feed:
    """The lines of complete CSV records, handed to one long-lived `csv.reader`."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.lines:
            raise StopIteration
        return self.lines.popleft()


class CsvRows:
    """CSV records → rows, line lists at a time; the first record is the header."""

    def __init__(self) -> None:
        """Start before the header."""
        self._feed = _Feed()
        self._reader = csv.reader(self._feed, strict=True)
        self._header: list[str] | None = None
        self._record: list[str] = []
        self._start = self._quotes = self._size = 0

    def feed(self, lines: list[RawLine]) -> list[Row]:
        """The rows the lines complete (a quoted field may continue in later lines)."""
        rows: list[Row] = []
        for number, text, problem in lines:
            if problem:
                rows += self.finish()
                rows.append(Row(number, {}, text[:RAW_KEPT], problem))
                continue
            if not self._record:
                if not text or text.isspace():
                    continue
                self._start = number
            self._record.append(text)
            self._size += len(text)
            self._quotes += text.count('"')
            if self._quotes % 2 and self._size <= MAX_LINE_BYTES:
                continue  # a quoted field goes on on the next line
            if self._quotes % 2:
                rows += self.finish()
                continue
            row = self._complete()
            if row is not None:
                rows.append(row)
        return rows

    def _complete(self) -> Row | None:
        record, number = self._record, self._start
        self._record, self._quotes, self._size = [], 0, 0
        self._feed.lines.extend(part + "\n" for part in record)
        text = "\n".join(record)
        try:
            cells = next(self._reader)
        except csv.Error as error:
            self._feed.lines.clear()
            return Row(number, {}, text[:RAW_KEPT], "malformed_csv", str(error))
        if self._header is None:
            self._header = [name.strip() for name in cells]
            return None
        if len(cells) > len(self._header):
            detail = f"{len(cells)} cells, header has {len(self._header)}"
            return Row(number, {}, text[:RAW_KEPT], "malformed_csv", detail)
        return Row(
            number, {name: cell for name, cell in zip(self._header, cells, strict=False) if cell}, text
        )

    def finish(self) -> list[Row]:
        """Report every line of a record whose quote never closed; none is dropped silently."""
        rows = [
            Row(self._start + offset, {}, text[:RAW_KEPT], "malformed_csv", "unterminated quoted field")
            for offset, text in enumerate(self._record)
        ]
        self._record, self._quotes, self._size = [], 0, 0
        return rows


async def decode_rows(body_format: str, chunks: AsyncIterable[bytes]) -> AsyncIterator[list[Row]]:
    """The body's rows (`ndjson` or `csv`), a list per received chunk."""
    decoder = CsvRows() if body_format == "csv" else None
    async for lines in split_lines(chunks):
        yield decoder.feed(lines) if decoder else ndjson_rows(lines)
    if decoder:
        yield decoder.finish()
