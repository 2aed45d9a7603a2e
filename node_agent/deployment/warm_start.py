"""A warm start for the ClientApp processes a partner's SuperNode starts (issue 17): the launcher's side.

Why: Flower 1.42's SuperNode starts a fresh ``flwr-clientapp`` process for every message, and each
one pays Python, Flower, NumPy, pandas, torch and Opacus (≈ 1.3 s of imports on a quiet machine,
several times that when a node's messages run side by side) before it reads its message — twice a
round (train, then evaluate), at every node. That, more than the computation, made a deployed round
slower than a simulated one.

How: `r2dde node start` runs, beside its SuperNode, a *warm server*
(:mod:`node_agent.deployment.warm_server`) that imports those third-party libraries once and waits on
a Unix socket in the node's own launcher folder (0700, socket 0600; both ends check that the other
is the same user). The ``flwr-clientapp`` launcher the SuperNode starts
(:mod:`node_agent.deployment.approved_app`) hands the server its command line, environment, working
folder and standard streams (:func:`launch_warm`); the server forks, and the child *is* that
message's ClientApp process — the approved-bundle check, then Flower's ``flwr-clientapp``, then exit.
The child tells the launcher its pid; the launcher passes SIGTERM and SIGINT on to it and exits with
its code. When no server takes the launch (none, stopped, another user's, no answer), the launcher
starts cold, exactly as before; once a child has said its pid, never (one message, one process).

This module is stdlib only: a warm start costs an interpreter, a connection and a fork.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

#: Where the launcher finds the server: set in the launcher script by ``write_launcher``.
SOCKET_ENV = "R2DDE_WARM_SOCKET"
SOCKET_NAME = "warm-clientapp.sock"
HEADER = struct.Struct("!I")
#: A server that does not accept or fork within these is treated as absent (the launch starts cold).
CONNECT_TIMEOUT_S = 5.0
PID_TIMEOUT_S = 60.0


class WarmStartError(RuntimeError):
    """The warm server cannot serve (its folder, its socket, a request): the message says which."""


@dataclass(frozen=True)
class Request:
    """What a ``flwr-clientapp`` launch is: its command line, environment and working folder."""

    argv: list[str]
    env: dict[str, str]
    cwd: str

    def encode(self) -> bytes:
        body = json.dumps({"argv": self.argv, "env": self.env, "cwd": self.cwd}).encode("utf-8")
        return HEADER.pack(len(body)) + body

    @classmethod
    def decode(cls, body: bytes) -> Request:
        try:
            raw = json.loads(body.decode("utf-8"))
            argv, env, cwd = raw["argv"], raw["env"], raw["cwd"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise WarmStartError(f"unreadable launch request: {type(exc).__name__}") from None
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise WarmStartError("launch request: argv must be a list of strings")
        strings = isinstance(env, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        )
        if not strings:
            raise WarmStartError("launch request: env must map strings to strings")
        if not isinstance(cwd, str):
            raise WarmStartError("launch request: cwd must be a string")
        return cls(argv=argv, env=env, cwd=cwd)


@dataclass(frozen=True)
class Answer:
    """One line from the server's side: ``pid`` (the child's, sent by the child itself), ``exit``
    (its code, once reaped) or ``refused`` (nothing was started; ``detail`` says why)."""

    kind: str
    value: int = 0
    detail: str = ""

    def encode(self) -> bytes:
        text = " ".join(self.detail.split())[:200] if self.kind == "refused" else str(self.value)
        return f"{self.kind} {text}\n".encode("ascii", "replace")

    @classmethod
    def decode(cls, line: str) -> Answer:
        kind, _, rest = line.partition(" ")
        if kind in ("pid", "exit") and rest.lstrip("-").isdigit():
            return cls(kind, int(rest))
        return cls("refused", detail=rest if kind == "refused" else line)


def socket_path(folder: Path) -> Path:
    """The warm socket of the launcher folder ``folder``: always inside it (never under /tmp)."""
    return folder.resolve() / SOCKET_NAME


@contextlib.contextmanager
def private_address(path: Path) -> Iterator[str]:
    """An address for ``path`` however long the folder's path (a Unix socket address holds 107
    bytes): the socket through an ``O_PATH`` handle on its folder, once that folder is checked to
    be this user's own, mode 0700, and not a symbolic link."""
    try:
        fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise WarmStartError(f"{path.parent}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise WarmStartError(f"{path.parent}: must belong to this user with mode 0700")
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def server_argv(folder: Path, starter: int | None = None) -> list[str]:
    """The warm server of the launcher folder ``folder``; it stops when ``starter`` (default: the
    calling process) goes."""
    starter = os.getpid() if starter is None else starter
    return [sys.executable, "-m", "node_agent.deployment.warm_server", str(socket_path(folder)), str(starter)]


def start_server(folder: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(server_argv(folder), env=dict(env))


def read_line(conn: socket.socket) -> str:
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            raise EOFError
        line += byte
        if len(line) > 256:
            raise EOFError
    return line.decode("ascii", "replace").strip()


def _connect(path: Path) -> socket.socket | None:
    """A connection to this user's own server at ``path``, or None (then the launch starts cold)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT_S)
    try:
        with private_address(path) as address:
            conn.connect(address)
        if peer_uid(conn) != os.getuid():
            # Someone else's server must not get the Runtime API token in our command line, nor our streams.
            raise WarmStartError(f"{path} is served by another user")
    except WarmStartError as refused:
        conn.close()
        print(f"r2dde: {refused}; starting cold", file=sys.stderr)
        return None
    except OSError:  # no server (the usual case when warm start is off), or one that does not accept
        conn.close()
        return None
    return conn


def launch_warm(path: Path, request: Request) -> int | None:
    """Run ``request`` as a child of the warm server at ``path``; its exit code, or None when no
    child was started for it (the caller then starts cold)."""
    conn = _connect(path)
    if conn is None:
        return None
    try:
        payload = request.encode()
        socket.send_fds(conn, [payload[: HEADER.size]], [0, 1, 2])
        conn.sendall(payload[HEADER.size :])
        conn.settimeout(PID_TIMEOUT_S)
        answer = Answer.decode(read_line(conn))  # the child's own first words: no pid, no child
    except (OSError, EOFError):
        conn.close()
        return None
    if answer.kind != "pid":
        conn.close()
        print(f"r2dde: the warm ClientApp server refused ({answer.detail}); starting cold", file=sys.stderr)
        return None
    child = answer.value

    def pass_on(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, pass_on)
    conn.settimeout(None)  # a message takes as long as it takes
    with conn:
        try:
            ended = Answer.decode(read_line(conn))
            if ended.kind != "exit":
                raise EOFError
            return ended.value
        except (OSError, EOFError):
            print("r2dde: the warm ClientApp server went away mid-message", file=sys.stderr)
            return 1
