"""A grid that collects replies sooner (issue 17).

Flower 1.42's deployment grid (``HttpGrid.send_and_receive``) asks the SuperLink for replies every
3 s, so each wave of messages (train, evaluate) waits 1.5 s on average after its last reply, twice a
round. ``PromptGrid`` delegates everything to the grid Flower gives the ServerApp and only
re-implements the waiting loop, asking every 0.5 s. Not faster: every pull is a transaction on the
SuperLink's SQLite state, and once, at ten pulls a second with ten nodes pushing replies on a busy
machine, a node's push met "database is locked" (HTTP 500); Flower's SuperNode does not push again,
so the study waited out its round timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from flwr.app import Message, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

PULL_INTERVAL_S = 0.5


class PromptGrid(Grid):
    """``inner`` with replies pulled every ``interval_s`` instead of every 3 s."""

    def __init__(self, inner: Grid, interval_s: float = PULL_INTERVAL_S) -> None:
        self.inner = inner
        self.interval_s = interval_s

    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def get_nodes(self) -> Iterable[Any]:
        return self.inner.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Flower's contract: push, then pull until every reply is in or ``timeout`` has passed."""
        outstanding = set(self.push_messages(messages))
        del messages  # as Flower does: the pushed models are not held while waiting
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while outstanding:
            pulled = list(self.pull_messages(outstanding))
            replies.extend(pulled)
            outstanding.difference_update(m.metadata.reply_to_message_id for m in pulled)
            if not outstanding or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(self.interval_s)
        return replies
