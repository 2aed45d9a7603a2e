"""The node's warm ClientApp server (issue 17): imports once, forks one process per message.

See :mod:`node_agent.deployment.warm_start` for why and for the launcher's side. What the server
keeps true:
  * one process per message, ended with the message: each child is a copy-on-write copy of a server
    that has never run a message, so nothing of one message (data, model, study) reaches another;
    the child closes every descriptor of the server and of other launches before it runs;
  * nothing of ours is imported here beyond the launcher itself: the ClientApp's own code is
    imported in the child, after the approved-bundle check, as in a cold start;
  * the node's protective randomness (noise, sampling masks) is drawn in the child from the OS
    CSPRNG (:class:`node_agent.dp_release.NodeRandomness`); the server draws none, and each child
    reseeds the libraries' global generators from the OS all the same;
  * one thread of Python, so forking is safe; the native pools NumPy's BLAS and pandas' allocator
    start at import reset themselves at fork (pthread_atfork), and torch's own pool is never started
    here (no tensor operation runs in the server);
  * a fault while serving one launch is logged and the others go on; the server stops when the
    process that started it (`r2dde node start`, or the SuperNode it became) goes;
  * libraries are those installed when the node started: restart the node after an upgrade.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from node_agent.deployment.warm_start import (
    HEADER,
    Answer,
    Request,
    WarmStartError,
    peer_uid,
    private_address,
)

#: Third-party libraries a train or evaluate message imports (the ClientApp's own code is not here).
#: Two load lazily, on first use, and were a fifth of a warm message's time in a 10-node profile:
#: torch._dynamo (the first optimizer built imports it) and httpcore (the first HTTP client).
PRELOADED = (
    "numpy",
    "pandas",
    "torch",
    "torch._dynamo",
    "opacus",
    "httpx",
    "httpcore",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "yaml",
    "flwr.app",
    "flwr.clientapp",
    "flwr.supernode.runtime.run_clientapp",
    "flwr.supernode.cli.flwr_clientapp",
)
#: Each launch's line in the node's log (the deployment benchmark counts them).
FORKED = "forked ClientApp process"
#: The server's line once its imports are done and it listens.
READY = "warm ClientApp server ready on"
MAX_REQUEST = 1 << 20
REQUEST_TIMEOUT_S = 5.0
_STOPPING = (signal.SIGTERM, signal.SIGINT)


def preload(modules: Sequence[str] = PRELOADED) -> list[str]:
    """Import what every ClientApp process would; the names that could not be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _bind(path: Path) -> tuple[socket.socket, os.stat_result]:
    """The socket, in this user's 0700 folder, readable by this user only; and what it is on disk
    (so that stopping removes this server's socket, never a newer server's)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with private_address(path) as address:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # a socket left by a server that did not stop cleanly
        previous = os.umask(0o177)
        try:
            server.bind(address)
        finally:
            os.umask(previous)
        server.listen(64)
        return server, os.stat(address)


def _receive(conn: socket.socket) -> tuple[Request, list[int]]:
    """One launch request and the launcher's three standard streams (closed here on any fault)."""
    conn.settimeout(REQUEST_TIMEOUT_S)
    fds: list[int] = []
    try:
        head, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
        if len(head) != HEADER.size or len(fds) != 3:
            raise WarmStartError("launch request: expected a length and three standard streams")
        (size,) = HEADER.unpack(head)
        if size > MAX_REQUEST:
            raise WarmStartError(f"launch request of {size} bytes (at most {MAX_REQUEST})")
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise WarmStartError("launch request cut short")
            body += chunk
        return Request.decode(body), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _become_clientapp(
    request: Request, conn: socket.socket, fds: list[int], inherited: list[int], run: Callable[[], None]
) -> None:
    """In the forked child: say its pid, take the launcher's streams, folder and environment, run, exit."""
    code = 1
    try:
        for sig in (*_STOPPING, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)  # blocked by the server around fork
        for fd in inherited:  # the server's listening socket, selector and other launches
            with contextlib.suppress(OSError):
                os.close(fd)
        conn.sendall(Answer("pid", os.getpid()).encode())  # from here on the message is this process's
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        sys.argv = list(request.argv)
        _reseed_global_generators()
        run()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 — a child must never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()  # what a cold process runs at exit
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def _reseed_global_generators() -> None:
    """Every child starts from fresh OS entropy, never from the state it was copied with."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


@dataclass
class _Launch:
    conn: socket.socket
    pid: int


class WarmServer:
    """Forks one ClientApp process per launch request; one thread (forking from threads is unsafe)."""

    def __init__(
        self, path: Path, run: Callable[[], None], say: Callable[[str], None], parent: int | None = None
    ) -> None:
        self.path = path
        self._run = run
        self._say = say
        self._parent = os.getppid() if parent is None else parent
        self._listener, self._socket_file = _bind(path)
        self._selector = selectors.EpollSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._launches: dict[int, _Launch] = {}  # by pid
        self._stopping = False

    def _inherited(self) -> list[int]:
        fds = [self._listener.fileno(), self._selector.fileno()]
        return fds + [launch.conn.fileno() for launch in self._launches.values()]

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        try:
            if peer_uid(conn) != os.getuid():
                raise WarmStartError("a launch request from another user")
            request, fds = _receive(conn)
        except (WarmStartError, OSError) as exc:
            self._say(f"launch refused: {exc}")
            with contextlib.suppress(OSError):
                conn.sendall(Answer("refused", detail=str(exc)).encode())
            conn.close()
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)  # the child resets its handlers first
        try:
            pid = os.fork()
            if pid == 0:
                _become_clientapp(request, conn, fds, self._inherited(), self._run)
        except OSError as exc:  # no process to be had: nothing ran, the launcher starts cold
            self._say(f"launch refused: fork failed: {exc}")
            with contextlib.suppress(OSError):
                conn.sendall(Answer("refused", detail="fork failed").encode())
            conn.close()
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
            for fd in fds:
                os.close(fd)
        conn.settimeout(None)
        self._launches[pid] = _Launch(conn=conn, pid=pid)
        self._say(f"{FORKED} {pid}")
        self._selector.register(conn, selectors.EVENT_READ, pid)

    def _reap(self) -> None:
        """Children that ended: their launchers learn the exit code."""
        while self._launches:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            launch = self._launches.pop(pid, None)
            if launch is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(launch.conn)
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says
            with contextlib.suppress(OSError):
                launch.conn.sendall(Answer("exit", code).encode())
            launch.conn.close()

    def _launcher_gone(self, pid: int) -> None:
        """The launcher died (the SuperNode stopped it): its message's process goes too."""
        launch = self._launches[pid]
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(launch.conn)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def serve_forever(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stopping = True

        for sig in _STOPPING:
            signal.signal(sig, stop)
        try:
            # The node's starter (`r2dde node start`, or the SuperNode it became) gone: so are we.
            while not self._stopping and os.getppid() == self._parent:
                for key, _ in self._selector.select(timeout=0.1):
                    try:
                        if key.data is None:
                            self._accept()
                        elif key.data in self._launches:
                            self._launcher_gone(key.data)
                    except Exception as fault:  # noqa: BLE001 — one launch's fault stops no other message
                        self._say(f"launch failed: {type(fault).__name__}: {fault}")
                self._reap()
        finally:
            self.close()

    def close(self) -> None:
        for launch in list(self._launches.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(launch.pid, signal.SIGTERM)
        for launch in list(self._launches.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(launch.pid, 0)
            launch.conn.close()
        self._launches.clear()
        self._selector.close()
        self._listener.close()
        with contextlib.suppress(OSError, WarmStartError), private_address(self.path) as address:
            on_disk = os.stat(address)
            if (on_disk.st_dev, on_disk.st_ino) == (self._socket_file.st_dev, self._socket_file.st_ino):
                os.unlink(address)  # ours, not a newer server's


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m node_agent.deployment.warm_server <socket> <starter pid>``: `r2dde node start`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        print(
            "usage: python -m node_agent.deployment.warm_server <socket path> <starter pid>", file=sys.stderr
        )
        return 2
    parent = int(args[1])  # recorded before the slow imports: a starter gone meanwhile is noticed

    def say(line: str) -> None:
        print(f"r2dde warm start: {line}", file=sys.stderr, flush=True)

    if os.getppid() != parent:
        say(f"started by {os.getppid()}, not by {parent}: not serving")
        return 1
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from node_agent.deployment.approved_app import run_clientapp_here

    missing = preload()
    try:
        server = WarmServer(Path(args[0]), run_clientapp_here, say, parent=parent)
    except (WarmStartError, OSError) as exc:
        say(f"cannot serve: {exc}")
        return 1
    say(f"{READY} {server.path}" + (f" (not preloaded: {', '.join(missing)})" if missing else ""))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
