"""One sync per vendor, whichever replica runs it.

PostgreSQL (every replica shares the index): a session-level advisory lock per vendor, taken
on a connection of its own that is held for as long as the replica syncs. A replica that
dies or loses its connection loses the session, and the server releases its locks; another
replica takes them on its next try. SQLite (one machine): an exclusive ``flock`` on a file
beside the database, per vendor, released by the kernel when the process ends, so two
processes (or two gateways in one process) on one file never sync the same vendor twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.core.records import Vendor

logger = logging.getLogger("gateway.index")


class SyncLocks(Protocol):
    """Who syncs which vendor. ``acquire`` never waits: a replica that does not get a
    vendor's lock serves from the index and tries again on its next pass."""

    async def acquire(self, vendor: Vendor) -> bool:
        """Hold ``vendor``'s lock (True: held now, maybe from before)."""
        ...

    async def holds(self, vendor: Vendor) -> bool:
        """The lock is still this replica's (its session is alive)."""
        ...

    async def release(self, vendor: Vendor) -> None: ...

    async def close(self) -> None: ...


def lock_key(vendor: Vendor) -> int:
    """The advisory lock key of a vendor's sync: a signed 64-bit number from its name."""
    digest = hashlib.blake2b(f"task_gateway.sync:{vendor.value}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class PostgresLocks:
    """Advisory locks on one dedicated autocommit connection (never idle in a transaction)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._held: set[Vendor] = set()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _drop(self) -> None:
        """The session is gone (or suspect): so are its locks."""
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def acquire(self, vendor: Vendor) -> bool:
        if vendor in self._held and await self.holds(vendor):
            return True
        try:
            conn = await self._connection()
            result = await conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(vendor)}
            )
            got = bool(result.scalar())
        except Exception:
            logger.warning("index: the sync lock connection failed", exc_info=True)
            await self._drop()
            return False
        if got:
            self._held.add(vendor)
        return got

    async def holds(self, vendor: Vendor) -> bool:
        if vendor not in self._held or self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:
            await self._drop()
            return False
        return True

    async def release(self, vendor: Vendor) -> None:
        if vendor not in self._held or self._conn is None:
            return
        self._held.discard(vendor)
        with contextlib.suppress(Exception):
            await self._conn.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(vendor)}
            )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()  # ends the session: the server releases every lock


class FileLocks:
    """``flock`` on ``<database>.sync-<vendor>.lock``; an in-memory database gets no file
    (it is one process's own anyway)."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._files: dict[Vendor, int] = {}

    def _path(self, vendor: Vendor) -> Path | None:
        if not self.database or self.database == ":memory:":
            return None
        return Path(f"{self.database}.sync-{vendor.value}.lock")

    async def acquire(self, vendor: Vendor) -> bool:
        if vendor in self._files:
            return True
        path = self._path(vendor)
        if path is None:
            self._files[vendor] = -1
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._files[vendor] = fd
        return True

    async def holds(self, vendor: Vendor) -> bool:
        return vendor in self._files

    async def release(self, vendor: Vendor) -> None:
        fd = self._files.pop(vendor, None)
        if fd is not None and fd >= 0:
            os.close(fd)  # closing the descriptor releases the flock

    async def close(self) -> None:
        for vendor in list(self._files):
            await self.release(vendor)


def locks_for(engine: AsyncEngine) -> SyncLocks:
    """The lock kind the index's database calls for."""
    if engine.dialect.name == "postgresql":
        return PostgresLocks(engine)
    return FileLocks(engine.url.database)
