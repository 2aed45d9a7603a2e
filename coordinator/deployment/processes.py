"""Start and stop the processes of a deployment (SuperLink, SuperNodes, broker) cleanly.

Why a supervisor: Flower's SuperLink and SuperNodes spawn detached helpers
(``flower-superexec``, ``flwr-serverapp``, ``flwr-clientapp``) in their own sessions, so
killing a process group is not enough. Every process started here carries a launch
marker in its environment, which those helpers inherit; ``close()`` terminates the
groups it started, then sweeps any process still carrying the marker, by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

LAUNCH_MARKER_ENV = "R2DDE_LAUNCH_ID"
PROCESS_MARKER_ENV = "R2DDE_PROCESS"
TERMINATE_GRACE_S = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS picks it; the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def base_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every deployment process: this venv first on PATH, telemetry off.

    ``flower-superlink`` launches ``flower-superexec`` by name, so the venv's ``bin`` must be
    on PATH even when the caller ran ``.venv/bin/r2dde`` without activating the venv.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def executable(name: str) -> str:
    """Path of a console script of this venv (``flower-superlink``...), found beside the interpreter."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name}: not installed beside {sys.executable} (is flwr in this venv?)")


def _process_environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


def marked_processes(launch_id: str, name: str | None = None) -> list[int]:
    """Live (non-zombie) pids carrying ``R2DDE_LAUNCH_ID=launch_id`` (and ``R2DDE_PROCESS=name``)."""
    needles = {f"{LAUNCH_MARKER_ENV}={launch_id}".encode()}
    if name is not None:
        needles.add(f"{PROCESS_MARKER_ENV}={name}".encode())
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        if needles <= set(_process_environ(pid).split(b"\0")) and not _is_zombie(pid):
            pids.append(pid)
    return pids


@dataclass
class ManagedProcess:
    """One started process: its name in the deployment, its Popen and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: tuple[str, ...]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace_s: float = TERMINATE_GRACE_S) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL; returns the exit code."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout=grace_s)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL at once, as a crash or a pulled cable would (used to inject faults)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=TERMINATE_GRACE_S)


@dataclass
class ProcessSupervisor:
    """Owns every process of one deployment; use as a context manager so nothing outlives it."""

    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    launch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        capture: bool = True,
    ) -> ManagedProcess:
        """Start ``argv`` in its own session, output to ``workdir/<name>.log`` (or this terminal)."""
        if name in self.processes and self.processes[name].alive():
            raise ValueError(f"process {name!r} is already running (pid {self.processes[name].pid})")
        log_path = self.workdir / f"{name}.log"
        markers = {LAUNCH_MARKER_ENV: self.launch_id, PROCESS_MARKER_ENV: name}
        full_env = base_environment({**self.env, **(env or {}), **markers})
        with log_path.open("ab") as log:
            popen = subprocess.Popen(  # noqa: S603 - argv built by this package, never a shell
                list(argv),
                env=full_env,
                cwd=str(cwd) if cwd else None,
                stdout=log if capture else None,
                stderr=subprocess.STDOUT if capture else None,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = ManagedProcess(name=name, popen=popen, log_path=log_path, argv=tuple(argv))
        self.processes[name] = process
        return process

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.processes[name]

    def crash(self, name: str) -> list[int]:
        """SIGKILL ``name`` and every helper it spawned, at once: a machine that loses power."""
        pids = marked_processes(self.launch_id, name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.processes[name].kill()
        return pids

    def leftovers(self) -> list[int]:
        """Processes of this launch still alive (helpers included)."""
        return marked_processes(self.launch_id)

    def close(self, grace_s: float = TERMINATE_GRACE_S) -> None:
        """Stop every process started here, newest first, then sweep detached helpers."""
        for process in reversed(list(self.processes.values())):
            process.stop(grace_s)
        deadline = time.monotonic() + grace_s
        while (pids := self.leftovers()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
            time.sleep(0.2)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ProcessSupervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_for_tls_port(
    host: str,
    port: int,
    ca_certificate: Path,
    *,
    timeout_s: float = 30.0,
    watch: ManagedProcess | None = None,
) -> None:
    """Block until a TLS handshake against ``host:port`` verifies with ``ca_certificate``.

    Fails early, with the process's log tail, if ``watch`` exits before it listens.
    """
    context = ssl.create_default_context(cafile=str(ca_certificate))
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if watch is not None and not watch.alive():
            tail = "\n".join(watch.log_text().splitlines()[-20:])
            code = watch.popen.returncode
            raise RuntimeError(f"{watch.name} exited with code {code} before listening:\n{tail}")
        try:
            with (
                socket.create_connection((host, port), timeout=2.0) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return
        except (OSError, ssl.SSLError) as exc:
            last_error = exc
            time.sleep(0.2)
    raise TimeoutError(f"nothing answered TLS on {host}:{port} within {timeout_s:.0f} s ({last_error})")
