"""Several broker processes behind one port, each accepting on its own ``SO_REUSEPORT`` socket.

uvicorn's own workers share one listening socket: the process that wakes first accepts a whole burst
of connections, and nodes keep theirs alive, so the load never spreads (measured: 20 nodes, all 20
connections on one of two workers). With one socket per process, Linux deals new connections out
over the processes. The database keeps them consistent: each process's ledger writer queues on the
audit chain's lock (``store.group_commit``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
from types import FrameType

import uvicorn

from trust_broker.service.app import app_from_environment

STOP_TIMEOUT_SECONDS = 15.0


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _worker(host: str, port: int, log_level: str) -> None:
    """One broker process: its own context (database engine, writer thread), its own socket."""
    sock = _listening_socket(host, port)
    config = uvicorn.Config(app_from_environment(), log_level=log_level, ws="none", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(count: int, host: str, port: int, log_level: str) -> int:
    """Run ``count`` broker processes until one stops or this process is asked to stop.

    The configuration travels in the environment (``app.ENV_*``), set by the caller. Returns the
    exit code: 0 after a requested stop, 1 when a worker died on its own.
    """
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_worker, args=(host, port, log_level), name=f"r2dde-broker-{i}")
        for i in range(count)
    ]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        multiprocessing.connection.wait([p.sentinel for p in processes])
        if not stopping:  # a worker died: stop the others rather than serve with fewer silently
            stop(signal.SIGTERM, None)
        for process in processes:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else 1
