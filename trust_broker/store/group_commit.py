"""Group commit for the ledger's hot path: many requests' changes, one transaction, one thread.

Every change extends the one audit chain, so changes are serial whatever we do. Run one
transaction per request and each pays, while it holds the chain's lock, its own round trips,
tip update, head signature and WAL flush, and the request threads fight over the GIL while they
hold that lock (measured in ``benchmarks/broker``). Here a single writer thread per process takes
every operation that is waiting, runs them one after the other in one transaction, links their
events to the chain once and commits once.

Lock order, the same in every group: the chain's tip first (taken when the group begins), then the
accounts, reservations and nonces its operations touch. Groups of different processes queue on
the tip, so they never hold an account another group waits for; the store's other writers lock
their own rows and then the tip, rows no group touches.

An operation's contract: read and decide first, write last. A ``StoreError`` (a refusal the
caller is told about) must be raised before the operation has written anything that matters, to
the database or to its group's ``memo`` (a reserve may have created its empty account row first);
its pending events are dropped and the rest of the group carries on.
Any other exception rolls the whole group back and each of its operations is run again alone, so
only the faulty one fails.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from trust_broker.store import chain_io
from trust_broker.store.chain_io import HeadSigning, PendingEvent
from trust_broker.store.records import StoreError

T = TypeVar("T")


class Group:
    """What the operations of one transaction share: the events they record, and a ``memo`` of rows
    already read in it (an account, its spending), valid while the transaction holds the chain."""

    __slots__ = ("events", "memo")

    def __init__(self) -> None:
        self.events: list[PendingEvent] = []
        self.memo: dict[Any, Any] = {}


Operation = Callable[[Connection, Group], T]

MAX_GROUP = 64


class WriterClosed(RuntimeError):
    """The store was closed (the broker is stopping): no new operation is taken."""


class _Job:
    __slots__ = ("future", "operation")

    def __init__(self, operation: Operation[Any]) -> None:
        self.operation = operation
        self.future: Future[Any] = Future()


class GroupCommitWriter:
    """``await writer.run(operation)`` from any event loop: ``operation(connection, group)`` runs on the
    writer thread, so no request thread waits on the database."""

    def __init__(
        self, engine: Engine, heads: HeadSigning | None, *, name: str = "ledger", max_group: int = MAX_GROUP
    ) -> None:
        """``heads=None``: a writer whose operations record no event (nonces), so it never takes the
        chain's lock and never waits for the ledger's groups."""
        self._engine = engine
        self._name = f"r2dde-{name}-writer"
        self._heads = heads
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, operation: Operation[T]) -> Future[T]:
        """Queue ``operation`` for the next group; the future holds its result, or its exception, once
        the group committed."""
        job = _Job(operation)
        with self._lock:
            if self._closed:
                raise WriterClosed(f"the {self._name} is closed")
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(job)
        return job.future

    async def run(self, operation: Operation[T]) -> T:
        """Await ``operation``'s outcome without holding a thread: the event loop is woken when it is in."""
        return await asyncio.wrap_future(self.submit(operation))

    def close(self) -> None:
        """Run the operations already queued, then stop the thread; later ones are refused."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            # A caller that gave up (its task was cancelled) is skipped; the others can no longer be
            # cancelled, so their answers are always delivered.
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            try:
                self._run_group(live)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one group
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _run_group(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        try:
            outcomes = self._transaction(jobs)
        except Exception as exc:  # noqa: BLE001 - reported to the callers, never lost
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            for job in jobs:  # only the faulty operation should fail: run each on its own
                self._run_group([job])
            return
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _transaction(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self._engine.begin() as connection:
            tip = chain_io.lock_tip(connection) if self._heads is not None else None
            shared = Group()
            for job in jobs:
                mark = len(shared.events)
                try:
                    outcomes.append((True, job.operation(connection, shared)))
                except StoreError as refusal:
                    del shared.events[mark:]
                    outcomes.append((False, refusal))
            if tip is not None and self._heads is not None:  # both or neither; the test is for the types
                chain_io.extend(connection, tip, shared.events, self._heads)
            elif shared.events:
                raise RuntimeError("an operation of a writer without a chain recorded events")
        return outcomes
