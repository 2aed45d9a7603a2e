"""PromptGrid keeps Flower's send-and-receive contract with a short wait between pulls (issue 17)."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from coordinator.prompt_grid import PromptGrid


class _SlowSuperLink:
    """A grid whose replies come in one per pull, after ``quiet`` empty pulls."""

    def __init__(self, ids: list[str], quiet: int = 2) -> None:
        self.ids, self.quiet, self.pulls, self.pushed = ids, quiet, 0, 0

    def push_messages(self, messages: Iterable[Any]) -> list[str]:
        self.pushed += len(list(messages))
        return list(self.ids)

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:
        self.pulls += 1
        wanted = sorted(message_ids)
        if self.pulls <= self.quiet or not wanted:
            return []
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=wanted[0]))]


def test_every_reply_is_collected_and_pulling_stops_with_the_last() -> None:
    link = _SlowSuperLink(["a", "b", "c"])
    grid = PromptGrid(link, interval_s=0.001)  # type: ignore[arg-type]
    replies = list(grid.send_and_receive([object(), object(), object()]))
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["a", "b", "c"]
    assert link.pushed == 3
    assert link.pulls == 2 + 3  # two empty pulls, one per reply, none after the last


def test_the_timeout_returns_what_came() -> None:
    link = _SlowSuperLink(["a", "b"], quiet=10**9)
    grid = PromptGrid(link, interval_s=0.01)  # type: ignore[arg-type]
    assert list(grid.send_and_receive([object(), object()], timeout=0.05)) == []
    assert link.pulls >= 2  # it kept asking until the deadline
