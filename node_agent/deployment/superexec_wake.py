"""A node's SuperExec that launches a ClientApp when its message arrives, not at its next poll (issue 17).

Flower 1.42's SuperExec (``flwr.supercore.superexec.run_superexec``) asks its SuperNode for a task
to launch every ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL`` seconds: each ask is an HTTP call served by the
SuperNode's API. At a quarter of a second (what ``r2dde node start`` set), ten idle nodes' SuperExecs
and SuperNodes kept a fifth of one of this machine's two cores busy asking; polling every two
seconds gave most of it back, but would make every message wait a second for its launch on average
(``benchmarks/deployment/round_overhead.py`` reports the idle CPU by process role, and the study's).

So both: the SuperExec polls every :data:`IDLE_POLL_S`, and the SuperNode wakes it as soon as it has
stored a message and created its task (Flower does both in ``_pull_and_store_message``). The wake is
one datagram on a Unix socket in the node's launcher folder (``r2dde-bin``, this user's, mode 0700,
as the warm server's socket): only the node's own user can send one, and a wake carries nothing but
"ask now" — what to launch still comes from the SuperNode's API, as before. A datagram sent while
the SuperExec is not waiting stays queued and makes its next wait return at once, so no message
waits for a poll because of a race; a lost wake (no listener, a full queue) costs at most one poll
interval, never a message. A SuperExec that cannot have the socket (another one listens there, the
folder is not private) keeps Flower's own poll.

The SuperNode starts ``flower-superexec`` by name; the node's launcher folder is first on its PATH
(``node_agent.cli.supernode_environment``), and :func:`write_superexec_launcher` puts there a
``flower-superexec`` that runs Flower's through :func:`main`. ``tests/node_agent/test_superexec_wake.py``
pins the one sleep of Flower's loop that this replaces.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import socket
import sys
from pathlib import Path

from node_agent.deployment.flower_shims import TimeStandIn, write_module_script
from node_agent.deployment.warm_start import private_address

#: Where the SuperNode and its SuperExec find the wake socket (set by the node's environment).
WAKE_ENV = "R2DDE_SUPEREXEC_WAKE"
WAKE_NAME = "superexec-wake.sock"
#: The SuperExec's own poll between wakes: a wake that was lost costs at most this.
IDLE_POLL_S = 2.0
SUPEREXEC_SCRIPT = "flower-superexec"


class WakeError(RuntimeError):
    """No wake socket for this SuperExec: the text says why (Flower's own poll then)."""


def wake_path(folder: Path) -> Path:
    """The wake socket of the launcher folder ``folder``."""
    return folder.resolve() / WAKE_NAME


class WakeChannel:
    """The SuperExec's end: a datagram socket bound in the node's private folder."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            with private_address(path) as address:
                self._take(address, path)
        except BaseException:
            self.sock.close()
            raise

    def _take(self, address: str, path: Path) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(address)
            except (FileNotFoundError, ConnectionRefusedError):
                pass  # none, or a socket file left by an earlier SuperExec: it is ours to replace
            else:
                raise WakeError(f"{path}: another SuperExec listens there")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
        previous = os.umask(0o177)
        try:
            self.sock.bind(address)
        finally:
            os.umask(previous)

    def wait(self, timeout_s: float) -> bool:
        """Until a wake or ``timeout_s``; True if woken. One wake is consumed per wait."""
        ready, _, _ = select.select([self.sock], [], [], timeout_s)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            self.sock.recv(16)
        return True

    def close(self) -> None:
        self.sock.close()


def wake(path: Path) -> bool:
    """Tell the SuperExec listening at ``path`` to ask for its task now. Never blocks, never raises:
    False if none listens (its poll will find the task) or its queue is full (a wake is pending)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, private_address(path) as address:
            sock.sendto(b"!", socket.MSG_DONTWAIT, address)
    except (OSError, RuntimeError):
        return False
    return True


class WakeableSleeps(TimeStandIn):
    """The ``time`` module as Flower's SuperExec loop sees it: its one sleep, the poll, ends on a wake."""

    def __init__(self, channel: WakeChannel, idle_poll_s: float = IDLE_POLL_S) -> None:
        self.channel = channel
        self.idle_poll_s = idle_poll_s

    def sleep(self, _poll_interval_s: float) -> None:
        self.channel.wait(self.idle_poll_s)


def install(path: Path, idle_poll_s: float = IDLE_POLL_S) -> WakeChannel:
    """Flower's SuperExec loop in this process: polls every ``idle_poll_s``, or when woken at ``path``."""
    channel = WakeChannel(path)
    module = importlib.import_module("flwr.supercore.superexec.run_superexec")
    setattr(module, "time", WakeableSleeps(channel, idle_poll_s))  # noqa: B010
    return channel


def write_superexec_launcher(folder: Path) -> Path:
    """``<folder>/flower-superexec``: Flower's SuperExec, woken by its SuperNode (:func:`main`)."""
    module = "node_agent.deployment.superexec_wake"
    return write_module_script(folder / SUPEREXEC_SCRIPT, module, SUPEREXEC_SCRIPT)


def main() -> int:
    path = os.environ.get(WAKE_ENV)
    if path:
        try:
            install(Path(path))
        except (OSError, RuntimeError) as exc:  # Flower's own polling then, unchanged
            print(f"r2dde: no SuperExec wake socket ({exc}); Flower's poll only", file=sys.stderr)
    from tasks.flower_logs import main as run_flower_script

    return run_flower_script()


if __name__ == "__main__":
    sys.exit(main())
