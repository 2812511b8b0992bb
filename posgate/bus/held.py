"""Transactions on one connection a busy background task keeps, instead of one pool checkout each.

The pool pings a connection at every checkout (`pool_pre_ping`), which on asyncpg is three
round trips (BEGIN, an empty query, ROLLBACK); a relay or a group committer running a short
transaction per batch would pay them on every batch. A `HeldConnection` checks one connection
out, keeps it while it works, and gives it back after any failure, so a broken connection is
never reused (the next transaction checks a fresh, pinged one out). On PostgreSQL the
transaction's BEGIN and COMMIT go straight to asyncpg (`posgate.db.raw.transaction`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from posgate.db import raw


class HeldConnection:
    """Runs one transaction at a time on a connection kept between transactions."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Take connections from the engine `sessions` is bound to."""
        self._sessions = sessions
        self._connection: AsyncConnection | None = None
        # The adapted and asyncpg connections under the kept one, looked up once per checkout.
        self._drivers: tuple[Any, Any] | None = None
        self._serial = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def begin(self, *, deferred: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a new transaction, committed when the block ends without an error.

        `deferred`: on PostgreSQL, begin the transaction only when something needs one; until
        then each direct statement commits on its own (`posgate.db.raw.transaction`).

        Raises:
            Exception: Whatever the block or the commit raised; the connection is given back.

        """
        async with self._serial:
            if self._connection is None:
                self._connection = await self._engine().connect()
            connection = self._connection
            session = self._sessions(bind=connection)
            try:
                if connection.dialect.name == "postgresql":
                    if self._drivers is None:
                        self._drivers = await raw.connections(connection)
                    async with raw.transaction(
                        session, connection, begin=not deferred, drivers=self._drivers
                    ):
                        yield session
                    return
                async with session.begin():
                    yield session
            except BaseException:
                await session.close()
                await self.close()
                raise
            await session.close()

    async def close(self) -> None:
        """Give the connection back to the pool (a new one is taken when needed)."""
        connection, self._connection = self._connection, None
        self._drivers = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _engine(self) -> AsyncEngine:
        bind = self._sessions.kw["bind"]
        if not isinstance(bind, AsyncEngine):
            raise TypeError("HeldConnection needs sessions bound to an AsyncEngine")
        return bind
