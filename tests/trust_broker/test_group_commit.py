"""The group-commit writer: operations waiting together share a transaction, and fail alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, func, insert, select

from trust_broker.accounting import LedgerAccountant
from trust_broker.store.chain_io import HeadSigning, PendingEvent
from trust_broker.store.db import make_engine, migrate
from trust_broker.store.group_commit import Group, GroupCommitWriter, WriterClosed
from trust_broker.store.records import StoreError
from trust_broker.store.sql import SqlBrokerStore

METADATA = MetaData()
ROWS = Table("rows", METADATA, Column("value", Integer, primary_key=True))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def _stored(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.scalars(select(ROWS.c.value)))


@contextmanager
def _held(writer: GroupCommitWriter) -> Iterator[None]:
    """Keep the writer busy inside a group: what is submitted meanwhile forms the next group."""
    inside, release = threading.Event(), threading.Event()

    def gate(_connection: Connection, _group: Group) -> None:
        inside.set()
        release.wait(timeout=10)

    first = writer.submit(gate)
    inside.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        first.result(timeout=10)


def _one_group(writer: GroupCommitWriter, operations: list) -> list:  # type: ignore[type-arg]
    """Queue ``operations`` so that they form one group."""
    with _held(writer):
        return [writer.submit(operation) for operation in operations]


def _insert(value: int, *, then_fail: BaseException | None = None):  # noqa: ANN202 - an operation
    def operation(connection: Connection, _group: Group) -> int:
        if isinstance(then_fail, StoreError):
            raise then_fail  # a refusal comes before any write (the writer's contract)
        connection.execute(insert(ROWS).values(value=value))
        if then_fail is not None:
            raise then_fail
        return int(connection.scalar(select(func.count()).select_from(ROWS)) or 0)

    return operation


def test_waiting_operations_share_one_transaction(engine: Engine) -> None:
    writer = GroupCommitWriter(engine, None)
    try:
        futures = _one_group(writer, [_insert(v) for v in range(5)])
        counts = [future.result(timeout=10) for future in futures]
    finally:
        writer.close()
    # one transaction: each operation saw the rows of those before it in the same group
    assert counts == [1, 2, 3, 4, 5]
    assert _stored(engine) == set(range(5))


def test_an_operation_that_fails_unexpectedly_fails_alone(engine: Engine) -> None:
    writer = GroupCommitWriter(engine, None)
    try:
        operations = [_insert(1), _insert(2, then_fail=RuntimeError("disk on fire")), _insert(3)]
        futures = _one_group(writer, operations)
        assert futures[0].result(timeout=10) >= 1
        with pytest.raises(RuntimeError, match="disk on fire"):
            futures[1].result(timeout=10)
        assert futures[2].result(timeout=10) >= 1
    finally:
        writer.close()
    assert _stored(engine) == {1, 3}  # the failed operation's write was rolled back, the others kept


def test_a_refusal_reaches_its_caller_and_the_group_commits(engine: Engine) -> None:
    writer = GroupCommitWriter(engine, None)
    try:
        refusal = StoreError("budget.cap", "over the cap", status=409)
        futures = _one_group(writer, [_insert(1), _insert(2, then_fail=refusal), _insert(3)])
        assert [futures[0].result(timeout=10), futures[2].result(timeout=10)] == [1, 2]
        with pytest.raises(StoreError) as refused:
            futures[1].result(timeout=10)
        assert refused.value.rule == "budget.cap"
    finally:
        writer.close()
    assert _stored(engine) == {1, 3}


def test_a_writer_without_a_chain_refuses_events(engine: Engine) -> None:
    def records_an_event(_connection: Connection, group: Group) -> None:
        group.events.append(PendingEvent("budget.reserved", "node.apec", {}))

    writer = GroupCommitWriter(engine, None)
    try:
        with pytest.raises(RuntimeError, match="without a chain"):
            writer.submit(records_an_event).result(timeout=10)
    finally:
        writer.close()


def test_a_caller_that_gives_up_does_not_stop_the_writer(engine: Engine) -> None:
    writer = GroupCommitWriter(engine, None)
    try:
        with _held(writer):
            abandoned = writer.submit(_insert(1))
            assert abandoned.cancel()  # e.g. the request's task was cancelled while it waited
            kept = writer.submit(_insert(2))
        assert kept.result(timeout=10) == 1
        assert writer.submit(_insert(3)).result(timeout=10) == 2  # the writer is still serving
    finally:
        writer.close()
    assert _stored(engine) == {2, 3}


def test_a_closed_writer_refuses_new_operations(engine: Engine) -> None:
    writer = GroupCommitWriter(engine, None)
    assert writer.submit(_insert(1)).result(timeout=10) == 1
    writer.close()
    with pytest.raises(WriterClosed):
        writer.submit(_insert(2))


@pytest.fixture
def ledger_engine(tmp_path: Path) -> Iterator[Engine]:
    """The broker's own schema: a writer with a chain needs its tip row."""

    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    migrate(engine)
    SqlBrokerStore(engine, LedgerAccountant()).close()  # creates the chain's tip
    yield engine
    engine.dispose()


def _remember(key: str, value: object) -> Callable[[Connection, Group], object]:
    """Record an event (a ledger change) and put ``value`` in the memo; return what was there before."""

    def operation(_connection: Connection, group: Group) -> object:
        previous = group.memo.get(key)
        group.memo[key] = value
        group.events.append(PendingEvent("node.report", "test", {"key": key}))
        return previous

    return operation


def test_the_memo_outlives_a_group_until_another_writer_changes_the_ledger(ledger_engine: Engine) -> None:
    ours, theirs = (GroupCommitWriter(ledger_engine, HeadSigning(None)) for _ in range(2))
    try:
        assert ours.submit(_remember("spent", 1)).result(timeout=10) is None
        assert ours.submit(_remember("spent", 2)).result(timeout=10) == 1  # still current: kept
        theirs.submit(_remember("other", 1)).result(timeout=10)  # another process moves the chain
        assert ours.submit(_remember("spent", 3)).result(timeout=10) is None  # unproven: emptied
    finally:
        ours.close()
        theirs.close()


def test_a_failed_group_empties_the_memo(ledger_engine: Engine) -> None:
    writer = GroupCommitWriter(ledger_engine, HeadSigning(None))

    def remember_then_fail(connection: Connection, group: Group) -> None:
        _remember("spent", 99)(connection, group)
        raise RuntimeError("connection lost")

    try:
        writer.submit(_remember("spent", 1)).result(timeout=10)
        with pytest.raises(RuntimeError, match="connection lost"):
            writer.submit(remember_then_fail).result(timeout=10)
        # 99 was never committed, and the chain did not move: only the failure can tell the memo is wrong
        assert writer.submit(_remember("spent", 2)).result(timeout=10) is None
    finally:
        writer.close()


def test_batched_items_waiting_together_run_in_one_call(engine: Engine) -> None:
    calls: list[list[int]] = []

    def double_all(_connection: Connection, items: list[int]) -> list[int]:
        calls.append(list(items))
        return [2 * item for item in items]

    writer = GroupCommitWriter(engine, None)
    try:
        with _held(writer):
            futures = [writer.submit_batched(double_all, item) for item in range(5)]
            single = writer.submit(_insert(1))
        assert [future.result(timeout=10) for future in futures] == [0, 2, 4, 6, 8]
        assert single.result(timeout=10) == 1
    finally:
        writer.close()
    assert calls == [[0, 1, 2, 3, 4]]
