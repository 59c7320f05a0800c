"""The persistent write-back queue: helpdesk calls survive a helpdesk outage and a restart.

Each call is a row in a SQLite file, keyed by an idempotency key derived from the webhook
event, so a webhook the helpdesk delivers twice is written back once, and the key travels as
the ``Idempotency-Key`` header. A background :class:`Deliverer` sends due calls, retrying
connection errors, timeouts, 408/425/429 and 5xx with exponential backoff (honouring
``Retry-After``); any other 4xx is a permanent failure kept for inspection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from .base import HelpdeskAdapter, OutboundCall

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    adapter TEXT NOT NULL, event_id TEXT NOT NULL, ticket_id TEXT NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (adapter, event_id));
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY, adapter TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    body TEXT NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, status TEXT NOT NULL DEFAULT 'pending', last_error TEXT,
    delivered REAL);
CREATE INDEX IF NOT EXISTS calls_due ON calls (status, next_at);
"""
RETRYABLE_STATUS = {408, 425, 429}
log = logging.getLogger("kefu.outbox")


@dataclass(frozen=True)
class QueuedCall:
    key: str
    adapter: str
    call: OutboundCall
    attempts: int
    status: str
    last_error: str | None


class Outbox:
    """Parameters
    ----------
    path : str or Path
        The SQLite file (created with its parent directory).
    base_delay, max_delay : float
        Backoff in seconds: ``min(max_delay, base_delay * 2**attempts)``, with jitter.
    max_attempts : int
        After this many failed attempts a call is marked ``failed``.
    """

    def __init__(self, path: str | Path, *, base_delay: float = 2.0, max_delay: float = 600.0,
                 max_attempts: int = 20) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.base_delay, self.max_delay, self.max_attempts = base_delay, max_delay, max_attempts
        # isolation_level=None: autocommit; every write is one statement except enqueue's explicit
        # BEGIN ... COMMIT, which rolls back on any error.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seen(self, adapter: str, event_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM events WHERE adapter=? AND event_id=?",
                                    (adapter, event_id)).fetchone() is not None

    def enqueue(self, adapter: str, event_id: str, ticket_id: str, calls: list[OutboundCall]) -> bool:
        """Queue the calls for one webhook event; False (and nothing queued) if the event was
        queued before.

        All or nothing: the bodies are serialised before the transaction starts (a body that is not
        JSON, or has NaN/infinity, which the sender could never send, raises here with nothing
        queued), and any error inside the transaction rolls it back before it propagates, so the
        connection is never left in an open transaction that would swallow later writes."""
        now = time.time()
        rows = []
        for i, call in enumerate(calls):
            key = hashlib.sha256(f"{adapter}\x1f{event_id}\x1f{i}".encode()).hexdigest()[:40]
            body = json.dumps(call.body, ensure_ascii=False, allow_nan=False)
            rows.append((key, adapter, call.method, call.path, body, now, now))
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (adapter, event_id, ticket_id, now))
                self._db.executemany(
                    "INSERT INTO calls (key, adapter, method, path, body, created, next_at) VALUES (?,?,?,?,?,?,?)",
                    rows)
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                return False
            except BaseException:
                self._rollback()
                raise
        self.wakeup.set()
        return True

    def _rollback(self) -> None:
        """End the open transaction, if any; never masks the error being handled."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("write-back queue: rollback failed")

    def due(self, limit: int = 20) -> list[QueuedCall]:
        return self._select("WHERE status='pending' AND next_at<=? ORDER BY created, key LIMIT ?",
                            (time.time(), limit))

    def next_due_in(self) -> float | None:
        """Seconds until the next pending call is due (0 if one is due now), None if none pends."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_at) FROM calls WHERE status='pending'").fetchone()
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def mark_done(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE calls SET status='done', attempts=attempts+1, delivered=?, last_error=NULL "
                             "WHERE key=?", (time.time(), key))

    def mark_failed(self, key: str, error: str, *, retry: bool, retry_after: float | None = None) -> str:
        """Record a failed attempt; returns the new status (``pending`` or ``failed``)."""
        with self._lock:
            row = self._db.execute("SELECT attempts FROM calls WHERE key=?", (key,)).fetchone()
            attempts = (row[0] if row else 0) + 1
            status = "pending" if retry and attempts < self.max_attempts else "failed"
            delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_delay))
            # one statement in autocommit mode: atomic, and no transaction is left open on error
            self._db.execute("UPDATE calls SET attempts=?, status=?, last_error=?, next_at=? WHERE key=?",
                             (attempts, status, error[:500], time.time() + delay, key))
        return status

    def calls(self, status: str | None = None) -> list[QueuedCall]:
        return self._select(("WHERE status=? " if status else "") + "ORDER BY created, key",
                            (status,) if status else ())

    def _select(self, where: str, params: tuple) -> list[QueuedCall]:
        with self._lock:
            rows = self._db.execute("SELECT key, adapter, method, path, body, attempts, status, last_error "
                                    "FROM calls " + where, params).fetchall()
        return [QueuedCall(r[0], r[1], OutboundCall(r[2], r[3], json.loads(r[4])), r[5], r[6], r[7]) for r in rows]

    def retry_failed(self) -> int:
        """Queue every failed call again (after fixing what made the helpdesk refuse it)."""
        with self._lock:
            cursor = self._db.execute("UPDATE calls SET status='pending', attempts=0, next_at=? WHERE status='failed'",
                                      (time.time(),))
        self.wakeup.set()
        return cursor.rowcount

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM calls GROUP BY status").fetchall()
        return {"pending": 0, "done": 0, "failed": 0, **dict(rows)}


class Deliverer:
    """Sends the outbox's due calls on a background thread until :meth:`stop`.

    `on_attempt(adapter, outcome)` is called after each attempt (``delivered``, ``retry`` or
    ``failed``), for metrics.
    """

    def __init__(self, outbox: Outbox, adapters: Mapping[str, HelpdeskAdapter],
                 on_attempt: Callable[[str, str], None] | None = None) -> None:
        self.outbox = outbox
        self.adapters = adapters
        self.on_attempt = on_attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kefu-outbox", daemon=True)
        self._client = httpx.Client(follow_redirects=False)

    def start(self) -> "Deliverer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the call in flight, then stop; pending calls stay queued for the next start."""
        self._stop.set()
        self.outbox.wakeup.set()
        self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # a bad pass must not stop deliveries for good; the calls stay queued
                log.exception("write-back pass failed; retrying")
                self._stop.wait(1.0)
            wait = self.outbox.next_due_in()
            self.outbox.wakeup.wait(timeout=1.0 if wait is None else min(max(wait, 0.01), 1.0))
            self.outbox.wakeup.clear()

    def deliver_due(self) -> int:
        """One pass over due calls; returns how many were delivered."""
        delivered = 0
        for queued in self.outbox.due():
            if self._stop.is_set():
                break
            try:
                outcome = self._send(queued)
            except Exception as exc:  # noqa: BLE001
                # A call that cannot even be built (an invalid URL, a body httpx refuses) would fail
                # the same way on every pass and hold up every call queued after it: fail it for good,
                # with the reason, for `triage outbox list` / `retry`.
                log.exception("write-back call %s cannot be sent", queued.key)
                outcome = self._failed(queued, f"{type(exc).__name__}: {exc}", retry=False)
            delivered += outcome == "delivered"
            if self.on_attempt is not None:
                self.on_attempt(queued.adapter, outcome)
        return delivered

    def _send(self, queued: QueuedCall) -> str:
        adapter = self.adapters.get(queued.adapter)
        if adapter is None:
            return self._failed(queued, f"adapter {queued.adapter!r} is not configured", retry=True)
        headers = {**adapter.auth_headers(), "Idempotency-Key": queued.key, "User-Agent": "kefu-triage"}
        try:
            response = self._client.request(queued.call.method, adapter.url(queued.call.path),
                                            json=queued.call.body, headers=headers, timeout=adapter.timeout)
        except httpx.HTTPError as exc:
            return self._failed(queued, f"{type(exc).__name__}: {exc}", retry=True)
        if response.is_success:
            self.outbox.mark_done(queued.key)
            return "delivered"
        retry = response.status_code in RETRYABLE_STATUS or response.status_code >= 500
        return self._failed(queued, f"HTTP {response.status_code}: {response.text[:200]}", retry=retry,
                            retry_after=_retry_after(response))

    def _failed(self, queued: QueuedCall, error: str, *, retry: bool, retry_after: float | None = None) -> str:
        status = self.outbox.mark_failed(queued.key, error, retry=retry, retry_after=retry_after)
        return "retry" if status == "pending" else "failed"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
