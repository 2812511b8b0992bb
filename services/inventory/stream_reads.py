"""Initial reads shared by the streams that open at the same moment with the same filter.

After a deploy or a network blip, thousands of kiosks reconnect at once, most with the same
filter (their store). Each stream's initial read is a consistent transaction of its own, about
3.5 ms of CPU, so 10,000 of them took 36 s before the last stream was live. Here, streams with
the same tenant, stores and SKUs that ask while a read for that filter is running wait for the
next one, and share it: during a storm each read serves everyone who arrived meanwhile.

Sharing is safe because every member registered with the hub before the shared read began: the
read is as late as each member's own read would have been, and its changes after the read still
reach every member's queue. A stream that resumes from sequence numbers reads alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.services.inventory import stream_log
from posgate.services.inventory.stream_log import InitialRead

Filter = tuple[str, frozenset[str] | None, frozenset[str] | None]


class SharedReads:
    """At most one initial read per filter at a time; those who ask meanwhile share the next."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Read from the database behind `sessions`."""
        self._sessions = sessions
        self._next: dict[Filter, asyncio.Future[InitialRead]] = {}
        self._running: dict[Filter, asyncio.Future[InitialRead]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # how many reads ran (for tests and metrics)

    async def read(
        self,
        tenant_id: str,
        stores: frozenset[str] | None,
        skus: frozenset[str] | None,
        resume: Mapping[str, int],
    ) -> InitialRead:
        """The initial read of a stream that registered with the hub before calling this."""
        if resume:
            self.reads += 1
            return await stream_log.read_initial(self._sessions, tenant_id, stores, skus, resume)
        key = (tenant_id, stores, skus)
        shared = self._next.get(key)
        if shared is None:
            shared = self._next[key] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._run(key, shared), name="posgate-inventory-shared-read")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # One member leaving (its stream cancelled) must not cancel the others' read.
        return await asyncio.shield(shared)

    async def _run(self, key: Filter, shared: asyncio.Future[InitialRead]) -> None:
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait([running])
        # From here on, newcomers form the next group: they may have registered after this read.
        del self._next[key]
        self._running[key] = shared
        try:
            self.reads += 1
            tenant_id, stores, skus = key
            shared.set_result(await stream_log.read_initial(self._sessions, tenant_id, stores, skus, {}))
        except Exception as error:  # every member's stream fails with it, and reconnects
            shared.set_exception(error)
            shared.exception()  # retrieved here: nobody may be left to await it
        finally:
            if self._running.get(key) is shared:
                del self._running[key]
