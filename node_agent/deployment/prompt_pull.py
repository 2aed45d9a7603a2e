"""A SuperNode that asks for its next message every second and sends each reply once it is ready (issue 17).

Flower 1.42's SuperNode loop (``flwr.supernode.start_client_internal``) pulls a message and, when
none is waiting, sleeps a hard-coded 3 s before it asks the SuperLink again; once a message is
handed to a ClientApp, it looks for the reply every 0.5 s. Each wave of messages (train, evaluate)
thus reached an idle node 1.5 s late on average, the last of ten nodes nearly 3 s late, and each
reply waited another 0.25 s on average. In a 10-node deployment on 2 cores these waits, not the
CPU, set the round's length: the run kept one core of two busy (``benchmarks/deployment/
round_overhead.py`` reports the CPU of each kind of process).

``python -m node_agent.deployment.prompt_pull flower-supernode …`` runs Flower's SuperNode (through
:mod:`tasks.flower_logs`) with the idle pull every :data:`PULL_INTERVAL_S` and the local waits every
:data:`LOCAL_WAIT_S`. A pull is one small HTTPS call on the SuperLink: ten nodes asking once a
second are ten calls a second on a server that already answers their heartbeats; a local wait is a
look into the SuperNode's own in-memory state. Once it has stored a message, it wakes the node's
SuperExec to launch the ClientApp (:mod:`node_agent.deployment.superexec_wake`).
``tests/node_agent/test_prompt_pull.py`` pins Flower's loop: a Flower upgrade that moves these sleeps
fails there, not silently.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node_agent.deployment.flower_shims import TimeStandIn
from node_agent.deployment.superexec_wake import WAKE_ENV, wake

#: Flower 1.42's sleeps in that loop, in seconds: ``time.sleep(3)`` when no message was pulled,
#: ``time.sleep(0.5)`` while waiting for a reply (or its content) in the node's own state.
FLOWER_IDLE_SLEEP_S = 3
FLOWER_LOCAL_WAIT_S = 0.5
PULL_INTERVAL_S = 1.0
LOCAL_WAIT_S = 0.1


class PromptSleeps(TimeStandIn):
    """The ``time`` module as Flower's SuperNode loop sees it: its two waits shortened."""

    def __init__(self, pull_interval_s: float = PULL_INTERVAL_S, local_wait_s: float = LOCAL_WAIT_S) -> None:
        self.shorter = {FLOWER_IDLE_SLEEP_S: pull_interval_s, FLOWER_LOCAL_WAIT_S: local_wait_s}

    def sleep(self, seconds: float) -> None:
        time.sleep(self.shorter.get(seconds, seconds))


def waking(pull_and_store: Callable[..., int | None], wake_socket: Path) -> Callable[..., int | None]:
    """Flower's ``_pull_and_store_message``, then a wake for the node's SuperExec when it stored a
    message (:mod:`node_agent.deployment.superexec_wake`): the ClientApp starts now, not at a poll."""

    @functools.wraps(pull_and_store)
    def pull_store_and_wake(*args: Any, **kwargs: Any) -> int | None:
        run_id = pull_and_store(*args, **kwargs)
        if run_id is not None:
            wake(wake_socket)
        return run_id

    return pull_store_and_wake


def install(pull_interval_s: float = PULL_INTERVAL_S, local_wait_s: float = LOCAL_WAIT_S) -> None:
    """Shorten the waits of Flower's SuperNode loop in this process; wake its SuperExec on a message."""
    start_client_internal = importlib.import_module("flwr.supernode.start_client_internal")
    setattr(start_client_internal, "time", PromptSleeps(pull_interval_s, local_wait_s))  # noqa: B010
    if wake_socket := os.environ.get(WAKE_ENV):
        original = start_client_internal._pull_and_store_message
        setattr(start_client_internal, "_pull_and_store_message", waking(original, Path(wake_socket)))  # noqa: B010


def main() -> int:
    install()
    from tasks.flower_logs import main as run_flower_script

    return run_flower_script()


if __name__ == "__main__":
    sys.exit(main())
