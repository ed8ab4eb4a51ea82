"""Django's PostgreSQL backend, with ``CONN_HEALTH_CHECKS`` answered on this
side of the socket when it can be (``ENGINE: "callbot.runtime.postgresql"``,
the backend whenever ``DATABASE_URL`` is set).

Django checks a reused connection before the first statement of each request
and each task (``close_old_connections``) by sending ``SELECT 1``: a round trip
before every click's first read, every worker task's claim and every webhook
batch's store, 0.2 ms on a quiet machine and 20-35 ms at p50 on two loaded
cores, where each round trip waits for the server's process and then this
thread to get a core. A connection left idle between requests has nothing to
read: the server sent everything a statement produced before its
ReadyForQuery, and psycopg read it. What a server that goes away sends an idle
connection (the termination notice of a restart or ``pg_terminate_backend``,
then the end of the stream) makes its socket readable, so a poll of the socket
with no wait tells a sound idle connection from one the server closed, without
asking the server. A readable socket closes the connection (the next
statement opens another, as after a failed ``SELECT 1``); a connection that is
not idle, or whose state cannot be read, is checked with ``SELECT 1`` as
Django does. A connection lost without a word from the server (a network cut)
passes both checks alike: its first statement fails, as it would have after
the ``SELECT 1`` had waited for TCP to give up.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base

from psycopg import pq


def idle_and_open(connection: object) -> bool | None:
    """True: an idle connection with nothing from the server waiting on its
    socket; False: closed, or the server sent something (closed it); None:
    not idle (inside a transaction, or a state this cannot read)."""
    try:
        pgconn = connection.pgconn  # type: ignore[attr-defined]
        if connection.closed or pgconn.status != pq.ConnStatus.OK:  # type: ignore[attr-defined]
            return False
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return None
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except Exception:
        return None


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        due = (
            self.connection is not None
            and not getattr(self, "pool", None)
            and getattr(self, "health_check_enabled", False)
            and not getattr(self, "health_check_done", False)
        )
        sound = idle_and_open(self.connection) if due else None
        if sound is None:
            super().close_if_health_check_failed()  # SELECT 1, or nothing due
            return
        if not sound:
            self.close()
        self.health_check_done = True
