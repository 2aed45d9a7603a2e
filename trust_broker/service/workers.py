"""Several broker processes behind one port, each accepting on its own ``SO_REUSEPORT`` socket.

uvicorn's own workers share one listening socket: the process that wakes first accepts a whole burst
of connections, and nodes keep theirs alive, so the load never spreads (measured: 20 nodes, all 20
connections on one of two workers). With one socket per process, Linux deals new connections out
over the processes. The database keeps them consistent: each process's ledger writer queues on the
audit chain's lock (``store.group_commit``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import signal
import socket
from types import FrameType

import uvicorn

from trust_broker.service.app import app_from_environment, freeze_startup_heap

STOP_TIMEOUT_SECONDS = 15.0
PR_SET_PDEATHSIG = 1


def _listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the parent dies, so no orphan keeps serving on the port."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker(host: str, port: int, log_level: str) -> None:
    """One broker process: its own context (database engine, writer threads), its own socket."""
    _die_with_parent()
    sock = _listening_socket(host, port)
    config = uvicorn.Config(app_from_environment(), log_level=log_level, ws="none", lifespan="off")
    freeze_startup_heap()
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(count: int, host: str, port: int, log_level: str) -> int:
    """Run ``count`` broker processes until one stops or this process is asked to stop.

    The configuration travels in the environment (``app.ENV_*``), set by the caller. Returns the
    exit code: 0 after a requested stop, 1 when a worker stopped on its own (the others are then
    stopped too: the broker never serves with fewer processes silently). Raises ``OSError`` when
    the port is taken (``SO_REUSEPORT`` would otherwise let a second broker share it).
    """
    _listening_socket(host, port, shared=False).close()
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_worker, args=(host, port, log_level), name=f"r2dde-broker-{i}")
        for i in range(count)
    ]
    requested = False

    def stop_all() -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal requested
        requested = True
        # Ctrl-C reaches the workers from the terminal already; a second signal would make uvicorn
        # skip its graceful shutdown, so only SIGTERM is passed on.
        if signum == signal.SIGTERM:
            stop_all()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            if requested:
                break
            process.start()
        started = [p for p in processes if p.pid is not None]
        multiprocessing.connection.wait([p.sentinel for p in started])
        if not requested:
            stop_all()
        for process in started:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if requested else 1
