"""One upload end to end: stream → rows → validation → commands, committed chunk by chunk.

Every `chunk_rows` rows, the rows' commands (partial batches closed), their errors and the
job's counters are committed in one transaction, so `rows_ok` and `rows_failed` only ever
count rows whose outcome is durable. When the body ends the last chunk is committed and the
job marked `completed`; only then does the caller answer 202. If the body breaks off or the
database fails, the job is marked `failed` with the counters of its last committed chunk;
what was committed stays, and re-uploading the whole file is safe because every key is
content-derived.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.retry import describe_error
from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.imports import jobs
from posgate.gateway.imports.batches import Batcher, ImportOrigin
from posgate.gateway.imports.lines import RAW_KEPT, Row, decode_rows
from posgate.gateway.imports.rows import ImportRow, RowError, RowValidator
from posgate.gateway.imports.tables import JobState
from posgate.gateway.mappings import snapshot


@dataclass(frozen=True, slots=True)
class Upload:
    """Who uploads what.

    Attributes:
        provider: Registry name of the seller's platform.
        tenant_id: The tenant the bearer token belongs to.
        merchant_id: The seller's account at the provider; its mappings resolve vendor ids.
        body_format: `ndjson` or `csv`.
        url: The URL posted to (kept on the raw-payload record).
        headers: Request headers, lower-cased (credentials are not stored).

    """

    provider: str
    tenant_id: str
    merchant_id: str
    body_format: str
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Sizes of the work units: rows per commit, lines per command."""

    chunk_rows: int = 20_000
    batch_size: int = 500


class ImportRunner:
    """Runs uploads against one database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
        tuning: Tuning = Tuning(),
    ) -> None:
        """`on_commit` runs after each committed chunk (wakes the dispatcher)."""
        self._sessions = sessions
        self._clock = clock
        self._on_commit = on_commit
        self._tuning = tuning

    async def start(self, upload: Upload) -> tuple[int, int]:
        """Create the running job: (job id, raw-payload id)."""
        async with self._sessions() as session:
            ids = await jobs.create_job(
                session,
                provider=upload.provider,
                tenant_id=upload.tenant_id,
                merchant_id=upload.merchant_id,
                body_format=upload.body_format,
                url=upload.url,
                headers=upload.headers,
                now=self._clock(),
            )
            await session.commit()
        return ids

    async def run(self, upload: Upload, job: tuple[int, int], chunks: AsyncIterable[bytes]) -> None:
        """Import the body into the started `job`; marks it completed, or failed and re-raises."""
        try:
            await self._consume(upload, job, chunks)
        except BaseException as error:
            async with self._sessions() as session:
                await jobs.finish_job(session, job[0], JobState.FAILED, self._clock(), describe_error(error))
                await session.commit()
            raise

    async def _consume(self, upload: Upload, job: tuple[int, int], chunks: AsyncIterable[bytes]) -> None:
        async with self._sessions() as session:
            mapping = await snapshot(session, upload.provider, upload.merchant_id)
        typed = upload.body_format == "ndjson"
        validate = RowValidator(upload.provider, upload.merchant_id, mapping, typed=typed).validate
        origin = ImportOrigin(upload.provider, upload.tenant_id, upload.merchant_id, self._clock())
        batcher = Batcher(origin, self._tuning.batch_size)
        progress = jobs.Progress()
        rejected: list[Row] = []
        writing: asyncio.Task[None] | None = None
        try:
            async for rows in decode_rows(upload.body_format, chunks):
                accept(rows, validate, batcher, rejected)
                progress.rows_total += len(rows)
                if progress.rows_total - progress.committed < self._tuning.chunk_rows:
                    continue
                # Parse the next rows while this chunk is written; one write at a time.
                if writing is not None:
                    await writing
                counters = progress.take(rejected)
                writing = asyncio.create_task(self._commit(job, batcher.drain(), rejected, counters))
                rejected = []
        finally:
            if writing is not None and not writing.done():
                # Let the chunk in flight land before the job is finished either way.
                await asyncio.wait([writing])
        if writing is not None:
            writing.result()
        await self._commit(job, batcher.drain(), rejected, progress.take(rejected), finished=True)

    async def _commit(
        self,
        job: tuple[int, int],
        canonical: list[CanonicalCommand],
        rejected: list[Row],
        counters: jobs.Progress,
        *,
        finished: bool = False,
    ) -> None:
        now = self._clock()
        async with self._sessions() as session:
            await jobs.record_chunk(
                session,
                job_id=job[0],
                raw_payload_id=job[1],
                canonical=canonical,
                rejected=rejected,
                progress=counters,
                now=now,
            )
            if finished:
                await jobs.finish_job(session, job[0], JobState.COMPLETED, now)
            await session.commit()
        self._on_commit()


def accept(
    rows: list[Row], validate: Callable[[dict[str, Any]], ImportRow], batcher: Batcher, rejected: list[Row]
) -> None:
    """Batch the good rows; collect the bad ones with their reasons."""
    for row in rows:
        if row.reason:
            rejected.append(row)
            continue
        try:
            batcher.add(validate(row.fields))
        except RowError as error:
            rejected.append(Row(row.number, {}, row.raw[:RAW_KEPT], error.reason, error.detail))
