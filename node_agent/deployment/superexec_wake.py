"""A node's SuperExec that launches a ClientApp when its message arrives, not at its next poll (issue 17).

Flower 1.42's SuperExec (``flwr.supercore.superexec.run_superexec``) asks its SuperNode for a task
to launch every ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL`` seconds: each ask is an HTTP call served by the
SuperNode's API. At a quarter of a second, ten idle nodes spent 0.2 of this machine's two cores
asking (SuperExecs and SuperNodes together); at two seconds they spent 0.07, and the study ran
faster for the CPU it gave back, but every message would wait a second for its launch on average
(``benchmarks/deployment/round_overhead.py`` reports both, idle and in a study).

So both: the SuperExec still polls every :data:`IDLE_POLL_S`, and the SuperNode wakes it as soon as
it has stored a message. The wake is one datagram on a Unix socket in the node's launcher folder
(``r2dde-bin``, this user's, mode 0700, as the warm server's socket): only the node's own user can
send one, and a wake carries nothing but "ask now" — what to launch still comes from the SuperNode's
API, as before. A datagram sent while the SuperExec is not waiting stays queued and makes its next
wait return at once, so no message waits for a poll because of a race; a lost wake (no listener)
costs one poll interval, never a message.

The SuperNode starts ``flower-superexec`` by name; the node's launcher folder is first on its PATH
(``node_agent.cli.supernode_environment``), and :func:`write_superexec_launcher` puts there a
``flower-superexec`` that runs Flower's through :func:`main`. ``tests/node_agent/test_superexec_wake.py``
pins the one sleep of Flower's loop that this replaces.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from node_agent.deployment.warm_start import private_address

#: Where the SuperNode and its SuperExec find the wake socket (set by the node's environment).
WAKE_ENV = "R2DDE_SUPEREXEC_WAKE"
WAKE_NAME = "superexec-wake.sock"
#: The SuperExec's own poll between wakes: a wake that was lost costs at most this.
IDLE_POLL_S = 2.0
SUPEREXEC_SCRIPT = "flower-superexec"


def wake_path(folder: Path) -> Path:
    """The wake socket of the launcher folder ``folder``."""
    return folder.resolve() / WAKE_NAME


class WakeChannel:
    """The SuperExec's end: a datagram socket bound in the node's private folder."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        with private_address(path) as address:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address)  # left by a SuperExec that did not stop cleanly
            previous = os.umask(0o177)
            try:
                self.sock.bind(address)
            finally:
                os.umask(previous)

    def wait(self, timeout_s: float) -> bool:
        """Until a wake or ``timeout_s``; True if woken. Every queued wake is consumed."""
        ready, _, _ = select.select([self.sock], [], [], timeout_s)
        while True:
            try:
                self.sock.recv(16)
            except BlockingIOError:
                return bool(ready)

    def close(self) -> None:
        self.sock.close()


def wake(path: Path) -> bool:
    """Tell the SuperExec listening at ``path`` to ask for its task now; False if none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            with private_address(path) as address:
                sock.sendto(b"!", address)
        except (OSError, RuntimeError):  # no SuperExec yet, or its folder is not this user's
            return False
    return True


class WakeableSleeps:
    """The ``time`` module as Flower's SuperExec loop sees it: its one sleep, the poll, ends on a wake."""

    def __init__(self, channel: WakeChannel, idle_poll_s: float = IDLE_POLL_S) -> None:
        self.channel = channel
        self.idle_poll_s = idle_poll_s

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, _poll_interval_s: float) -> None:
        self.channel.wait(self.idle_poll_s)


def install(path: Path, idle_poll_s: float = IDLE_POLL_S) -> WakeChannel:
    """Flower's SuperExec loop in this process: polls every ``idle_poll_s``, or when woken at ``path``."""
    from flwr.supercore.superexec import run_superexec

    channel = WakeChannel(path)
    setattr(run_superexec, "time", WakeableSleeps(channel, idle_poll_s))  # noqa: B010
    return channel


def write_superexec_launcher(folder: Path) -> Path:
    """``<folder>/flower-superexec``: Flower's SuperExec, woken by its SuperNode (:func:`main`)."""
    script = folder / SUPEREXEC_SCRIPT
    command = f"{shlex.quote(sys.executable)} -m node_agent.deployment.superexec_wake {SUPEREXEC_SCRIPT}"
    script.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def main() -> int:
    path = os.environ.get(WAKE_ENV)
    if path:
        try:
            install(Path(path))
        except (OSError, RuntimeError) as exc:  # Flower's own polling then, unchanged
            print(f"r2dde: no SuperExec wake socket at {path} ({exc}); polling only", file=sys.stderr)
    from tasks.flower_logs import main as run_flower_script

    return run_flower_script()


if __name__ == "__main__":
    sys.exit(main())
