"""Group commit for the ledger's hot path: many requests' changes, one transaction, one thread.

Every change extends the one audit chain, so changes are serial whatever we do. Run one
transaction per request and each pays, while it holds the chain's lock, its own round trips,
tip update, head signature and WAL flush, and the request threads fight over the GIL while they
hold that lock (measured in ``benchmarks/broker``). Here a single writer thread per process takes
every operation that is waiting, runs them one after the other in one transaction, links their
events to the chain once and commits once.

Lock order, the same in every group: the chain's tip first (taken when the group begins), then
whatever account or reservation rows its operations read from the database rather than the memo.
Groups of different processes queue on the tip, so they never hold an account another group waits
for; the store's other writers lock their own rows and then the tip, rows no group touches.

An operation's contract: read and decide first, write last. A ``StoreError`` (a refusal the
caller is told about) must be raised before the operation has written anything that matters, to
the database or to the ``memo`` (a reserve may have created its empty account row first); its
pending events are dropped and the rest of the group carries on.
Any other exception rolls the whole group back and each of its operations is run again alone, so
only the faulty one fails.

The ``memo`` (rows the operations read or wrote: accounts, their spending, live reservations, grant
states) outlives the group while it is provably current. Every change to the rows it holds extends
the chain (creating an empty account does not, but an account row never changes), so if the tip
this writer finds when its next group locks it is the one its last group left, no other
transaction has changed anything since, and the memo is kept. If the chain has moved
(another process, or a registry change), ``catch_up`` may bring the memo current from the events
appended since; if it cannot, the memo is emptied. A group that fails leaves no proven tip, so the
next one starts with an empty memo (it may hold rows that were rolled back).

Operations of one kind that need no order among themselves (signature nonces) can be ``batched``:
a group runs all its waiting calls of that kind in one statement.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine

from trust_broker.audit.chain import AuditEvent
from trust_broker.store import chain_io
from trust_broker.store.chain_io import HeadSigning, PendingEvent
from trust_broker.store.records import StoreError

T = TypeVar("T")


class Group:
    """What the operations of one transaction share: the events they record, and the writer's ``memo``
    of rows already read or written (current while the transaction holds the chain's tip)."""

    __slots__ = ("events", "memo")

    def __init__(self, memo: dict[Any, Any]) -> None:
        self.events: list[PendingEvent] = []
        self.memo = memo


Operation = Callable[[Connection, Group], T]
BatchOperation = Callable[[Connection, list[Any]], list[Any]]
"""Runs the items of every waiting call at once; returns one result per item, in their order."""
CatchUp = Callable[[Connection, dict[Any, Any], chain_io.Tip, chain_io.Tip], bool]
"""Update the memo for the events from the memo's tip (exclusive) to the locked one (inclusive);
False if it cannot."""

MAX_GROUP = 64
MAX_MEMO = 10_000  # entries (≈ 1 kB each); past this it is emptied: abandoned reservations pile up


class WriterClosed(RuntimeError):
    """The store was closed (the broker is stopping): no new operation is taken."""


class Linked(NamedTuple):
    """An operation's result with the events it recorded, as linked in the chain, and the head its
    group left, signed by the broker (one signature per group: what every receipt of the group holds)."""

    value: Any
    events: list[AuditEvent]
    head_jws: str | None


class _Job:
    __slots__ = ("batch", "future", "linked", "marks", "operation", "outcome")

    def __init__(
        self,
        operation: Operation[Any] | None,
        batch: tuple[BatchOperation, Any] | None = None,
        *,
        linked: bool = False,
    ) -> None:
        self.operation = operation
        self.batch = batch  # (batch operation, this call's item)
        self.linked = linked  # answer with a ``Linked`` (the events and head) rather than the value
        self.marks = (0, 0)  # its events' slice of the group's
        self.future: Future[Any] = Future()
        self.outcome: tuple[bool, Any] = (False, None)  # (succeeded, result or refusal), set in its group


class GroupCommitWriter:
    """``await writer.run(operation)`` from any event loop: ``operation(connection, group)`` runs on the
    writer thread, so no request thread waits on the database."""

    def __init__(
        self,
        engine: Engine,
        heads: HeadSigning | None,
        *,
        name: str = "ledger",
        max_group: int = MAX_GROUP,
        catch_up: CatchUp | None = None,
    ) -> None:
        """``heads=None``: a writer whose operations record no event (nonces), so it never takes the
        chain's lock and never waits for the ledger's groups (and keeps no memo)."""
        self._engine = engine
        self._name = f"r2dde-{name}-writer"
        self._heads = heads
        self._max_group = max_group
        self._catch_up = catch_up
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._memo: dict[Any, Any] = {}
        self._memo_tip: chain_io.Tip | None = None  # the tip the last committed group left

    def submit(self, operation: Operation[T]) -> Future[T]:
        """Queue ``operation`` for the next group; the future holds its result, or its exception, once
        the group committed."""
        return self._enqueue(_Job(operation))

    def submit_batched(self, batch: BatchOperation, item: Any) -> Future[Any]:
        """Queue ``item`` for ``batch``: the next group runs it with every other waiting item of ``batch``."""
        return self._enqueue(_Job(None, (batch, item)))

    def _enqueue(self, job: _Job) -> Future[Any]:
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

    async def run_linked(self, operation: Operation[Any]) -> Linked:
        """As ``run``, with the events the operation recorded and the chain's head after its group.

        A refusal (``StoreError``) that recorded an event (a refused reserve) is raised with the
        ``Linked`` of that event as its ``linked`` attribute, so its answer can carry a receipt too.
        """
        return await asyncio.wrap_future(self._enqueue(_Job(operation, linked=True)))

    async def run_batched(self, batch: BatchOperation, item: Any) -> Any:
        """Await ``item``'s result from the next group's single run of ``batch``."""
        return await asyncio.wrap_future(self.submit_batched(batch, item))

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

    def _memo_current(
        self, connection: Connection, tip: chain_io.Tip | None, memo_tip: chain_io.Tip | None
    ) -> bool:
        """Is the memo (or can it be made) current for the chain as ``tip`` shows it?"""
        if tip is None or memo_tip is None or len(self._memo) > MAX_MEMO:
            return False
        if tip == memo_tip:
            return True
        return self._catch_up is not None and self._catch_up(connection, self._memo, memo_tip, tip)

    def _transaction(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        # Until this group commits, the memo is unproven: should it fail, the next group starts afresh.
        memo_tip, self._memo_tip = self._memo_tip, None
        with self._engine.begin() as connection:
            tip = chain_io.lock_tip(connection) if self._heads is not None else None
            if not self._memo_current(connection, tip, memo_tip):
                self._memo.clear()
            shared = Group(self._memo)
            batches: dict[BatchOperation, list[_Job]] = {}
            for job in jobs:
                if job.batch is not None:
                    batches.setdefault(job.batch[0], []).append(job)
            for batch, members in batches.items():
                results = batch(connection, [member.batch[1] for member in members])  # type: ignore[index]
                for member, result in zip(members, results, strict=True):
                    member.outcome = (True, result)
            for job in jobs:
                if job.operation is None:
                    continue
                mark = len(shared.events)
                try:
                    job.outcome = (True, job.operation(connection, shared))
                except StoreError as refusal:
                    del shared.events[mark:]
                    job.outcome = (False, refusal)
                job.marks = (mark, len(shared.events))
            linked: list[AuditEvent] = []
            head_jws: str | None = None
            if tip is not None and self._heads is not None:  # both or neither; the test is for the types
                linked, head_jws = chain_io.extend(connection, tip, shared.events, self._heads)
                tip = tip if not linked else chain_io.Tip(linked[-1].seq, linked[-1].hash)
                if (
                    linked
                    and head_jws is None
                    and self._heads.sign is not None
                    and any(j.linked for j in jobs)
                ):
                    head_jws = self._heads.sign(linked[-1])  # for the receipts only (not kept as a head)
            elif shared.events:
                raise RuntimeError("an operation of a writer without a chain recorded events")
        self._memo_tip = tip
        outcomes = []
        for job in jobs:
            ok, value = job.outcome
            if job.linked and ok:
                value = Linked(value, linked[job.marks[0] : job.marks[1]], head_jws)
            outcomes.append((ok, value))
        return outcomes
