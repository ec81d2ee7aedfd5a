"""Writer leases: which processes are writing the index right now, kept alive by a heartbeat.

Every process that writes the index (an API process, a CLI ingest, a ``ragline worker``) holds one lease, a row of
``writers`` with an expiry that a daemon thread pushes forward every third of the lease. A pending manifest row
names the lease of its writer (``documents.writer``), so a repair can tell a write whose process died (its lease
expired or is gone) from one that is still under way in another process, on this host or another. An ingestion
job held by a worker names the same lease, which is how a dead worker's job is found and retried.

Expiry is judged on the database's clock (``db_now``), never a host's: hosts whose clocks differ still agree on
which lease has expired. A lease that expired while its process was alive (the database was unreachable for
longer than the lease, or the process was frozen) is *lost*: its process must stop writing under it, because
another process may already be undoing its pending rows. ``Manifest`` refuses writes under a lost lease
(``LeaseLostError``), and ``process_lease`` hands out a fresh one for the next job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from sqlalchemy import ColumnElement, Connection, Float, cast, delete, func, insert, literal, select, update

from retrieval.store.engine import Database, StoreUnavailableError
from retrieval.store.tables import writers

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0


class LeaseLostError(RuntimeError):
    """A write under a lease that has expired: another process may be rolling this write back, so it stops."""


def db_now(connection: Connection) -> ColumnElement[float]:
    """The database server's time in Unix seconds, as an SQL expression (one clock for every host)."""
    if connection.dialect.name == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), Float)
    return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)


def live(connection: Connection) -> ColumnElement[bool]:
    """The condition "this ``writers`` row has not expired", for joins and ``EXISTS``."""
    return writers.c.expires_at > db_now(connection)


class WriterLease:
    """One process's lease; ``start`` registers it and starts the heartbeat, ``release`` ends it."""

    def __init__(self, database: Database, lease_s: float = DEFAULT_LEASE_S) -> None:
        if lease_s <= 0:
            raise ValueError(f"a writer lease must last a positive number of seconds, not {lease_s}")
        self.database = database
        self.lease_s = lease_s
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WriterLease:
        with self.database.write() as db:
            now = db.scalar(select(db_now(db)))
            db.execute(
                insert(writers).values(
                    id=self.id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    expires_at=now + self.lease_s,
                )
            )
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.id}", daemon=True)
        self._thread.start()
        return self

    def renew(self) -> bool:
        """Push the expiry forward; False (and ``lost``) when the lease had already expired or was removed."""
        with self.database.write() as db:
            renewed = db.execute(
                update(writers)
                .where(writers.c.id == self.id, live(db))
                .values(expires_at=db_now(db) + literal(self.lease_s))
            ).rowcount
        if not renewed:
            self.lost = True
        return bool(renewed)

    def check(self, connection: Connection) -> None:
        """Raise ``LeaseLostError`` unless the lease is live, inside the caller's transaction (a write fence): on
        PostgreSQL the row stays locked until it commits, so a reclaim cannot expire it half-way."""
        query = select(writers.c.id).where(writers.c.id == self.id, live(connection))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        if not self.lost and connection.scalar(query) is None:
            self.lost = True
        self.check_not_lost()

    def check_not_lost(self) -> None:
        """Raise ``LeaseLostError`` when the heartbeat has found the lease expired (no database round trip)."""
        if self.lost:
            raise LeaseLostError(
                f"writer lease {self.id} expired (no heartbeat for over {self.lease_s:.0f} s): this write stops, "
                "and the next ingest of the collection rolls it back"
            )

    def release(self) -> None:
        """End the lease now (a clean exit): its pending rows, if any, count as abandoned at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.database.write() as db:
                db.execute(delete(writers).where(writers.c.id == self.id))
        except StoreUnavailableError:
            log.warning("could not remove writer lease %s (database unreachable); it expires on its own", self.id)
        self.lost = True

    def _beat(self) -> None:
        """Renew every third of the lease; a lease not renewed for a whole lease is lost (it may have expired on
        the database's clock), and the thread ends with it."""
        interval = self.lease_s / 3
        renewed_at = time.monotonic()
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    log.error("writer lease %s expired before it was renewed; writes under it stop", self.id)
                    return
                renewed_at = time.monotonic()
                continue
            except StoreUnavailableError as exc:
                log.warning("writer lease %s not renewed: %s; retrying in %.0f s", self.id, exc, interval)
            except Exception:  # the heartbeat must outlive any one failure; the log has it
                log.exception("writer lease %s: heartbeat failed", self.id)
            if time.monotonic() - renewed_at > self.lease_s:
                self.lost = True
                log.error("writer lease %s not renewed for %.0f s: lost; writes under it stop", self.id, self.lease_s)
                return


def expire_dead_writers(connection: Connection) -> list[str]:
    """Remove expired leases (in the caller's transaction); returns their ids."""
    expired = list(connection.scalars(select(writers.c.id).where(~live(connection))))
    if expired:
        connection.execute(delete(writers).where(writers.c.id.in_(expired), ~live(connection)))
    return expired


_PROCESS_LEASES: dict[str, WriterLease] = {}
_PROCESS_LOCK = threading.Lock()


def process_lease(database: Database, lease_s: float = DEFAULT_LEASE_S) -> WriterLease:
    """This process's lease on ``database``: one per process and database (one heartbeat thread), replaced by a
    fresh one once lost."""
    key = database.url.render_as_string(hide_password=False)
    with _PROCESS_LOCK:
        lease = _PROCESS_LEASES.get(key)
        if lease is None or lease.lost:
            lease = _PROCESS_LEASES[key] = WriterLease(database, lease_s).start()
        return lease


def release_process_leases(url_prefix: str = "") -> int:
    """Release this process's leases on databases whose URL starts with ``url_prefix`` (all by default); returns
    how many. For a process about to lose its database (a test stopping its PostgreSQL, a shutdown): without it the
    heartbeat threads keep retrying an unreachable server until their leases expire."""
    with _PROCESS_LOCK:
        chosen = {key: lease for key, lease in _PROCESS_LEASES.items() if key.startswith(url_prefix)}
        for key in chosen:
            del _PROCESS_LEASES[key]
    for lease in chosen.values():
        lease.release()
    return len(chosen)
