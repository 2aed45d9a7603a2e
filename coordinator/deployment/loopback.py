"""A whole federation on one machine, each party its own process, for demos, tests and benchmarks.

Every party is started through the same commands an operator types (``r2dde broker serve``,
``r2dde coordinator start``, ``r2dde node start``, run as ``python -m``/``-c`` to skip loading
every sub-command), on 127.0.0.1 with ports chosen free, and every process is stopped on
``close()`` — Flower's detached helpers included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coordinator.deployment.control import DeploymentError, SuperLinkControl
from coordinator.deployment.processes import ManagedProcess, ProcessSupervisor, free_port, wait_for_tls_port
from coordinator.deployment.superlink import SuperLinkTls

REFERENCE_ENV = "R2DDE_REFERENCE_DATA"
_BROKER_MAIN = "import sys; from trust_broker.cli import app; sys.argv[0] = 'r2dde broker'; app()"


@dataclass
class LoopbackFederation:
    """Broker + SuperLink + SuperNodes of a provisioned folder, as separate processes on loopback."""

    workdir: Path
    keys: Path  # the folder `r2dde provision` wrote (TLS material included)
    data: Path  # <data>/<site>/parcours.csv
    repo: Path = field(default_factory=lambda: Path(__file__).resolve().parents[2])
    supervisor: ProcessSupervisor = field(init=False)
    broker_port: int = 0
    superlink_port: int = 0

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(self.repo), os.environ.get("PYTHONPATH")]))}
        if REFERENCE_ENV not in os.environ:
            from tasks.reference import reference_data_dir

            env[REFERENCE_ENV] = str(reference_data_dir())
        self.supervisor = ProcessSupervisor(self.workdir / "logs", env=env)

    @property
    def broker_url(self) -> str:
        return f"http://127.0.0.1:{self.broker_port}"

    @property
    def superlink(self) -> str:
        return f"127.0.0.1:{self.superlink_port}"

    @property
    def ca_certificate(self) -> Path:
        return SuperLinkTls.from_provision(self.keys).ca_certificate

    def start_broker(self, *, policies: Path | None = None, timeout_s: float = 60.0) -> ManagedProcess:
        self.broker_port = free_port()
        database = f"sqlite:///{self.workdir / 'broker.db'}"
        argv = [
            sys.executable,
            "-c",
            _BROKER_MAIN,
            "serve",
            "--keys",
            str(self.keys),
            "--database",
            database,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.broker_port),
            "--log-level",
            "warning",
        ]
        if policies is not None:
            argv += ["--policies", str(policies)]
        process = self.supervisor.start("broker", argv, cwd=self.workdir)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not process.alive():
                raise DeploymentError(f"the broker exited before listening:\n{process.log_text()[-2000:]}")
            try:
                httpx.get(f"{self.broker_url}/v1/health", timeout=1.0)
                return process
            except httpx.TransportError:
                time.sleep(0.2)
        raise DeploymentError(f"the broker did not answer on {self.broker_url} within {timeout_s:.0f} s")

    def start_superlink(
        self, *, timeout_s: float = 60.0, port: int | None = None, memory_state: bool = False
    ) -> ManagedProcess:
        """`r2dde coordinator start`: SuperLink with TLS + SuperNode auth, every site's key registered.

        ``port``: the same one again, to restart a stopped SuperLink where the nodes dial it."""
        self.superlink_port = port or free_port()
        argv = [
            sys.executable,
            "-m",
            "coordinator.cli",
            "start",
            "--keys",
            str(self.keys),
            "--port",
            str(self.superlink_port),
            "--log-dir",
            str(self.workdir / "superlink"),
            *(["--memory-state"] if memory_state else []),
        ]
        process = self.supervisor.start(
            "superlink", argv, cwd=self.workdir, env={"FLWR_HOME": str(self.workdir / "flwr-superlink")}
        )
        wait_for_tls_port(
            "127.0.0.1", self.superlink_port, self.ca_certificate, timeout_s=timeout_s, watch=process
        )
        deadline = time.monotonic() + timeout_s
        while "SuperLink ready" not in process.log_text():  # registration done
            if not process.alive() or time.monotonic() > deadline:
                raise DeploymentError(f"the SuperLink did not get ready:\n{process.log_text()[-2000:]}")
            time.sleep(0.2)
        return process

    def start_node(
        self,
        site: str,
        *,
        keys_dir: Path | None = None,
        name: str | None = None,
        site_policy: Path | None = None,
        max_wait_time_s: float | None = None,
        warm: bool = True,
    ) -> ManagedProcess:
        """`r2dde node start` for ``site`` (``keys_dir`` to impersonate it with other keys; ``warm``
        False: without its warm ClientApp server, a cold process per message)."""
        keys_dir = keys_dir or self.keys / "nodes" / site
        name = name or site
        self.approve_app(keys_dir)
        argv = [
            sys.executable, "-m", "node_agent.cli", "start",
            "--site", site,
            "--data-dir", str(self.data / site),
            "--keys", str(keys_dir),
            "--broker-url", self.broker_url,
            "--superlink", self.superlink,
            "--runtime-port", str(free_port()),
            "--flwr-home", str(self.workdir / f"flwr-{name}"),
        ]  # fmt: skip
        if site_policy is not None:
            argv += ["--site-policy", str(site_policy)]
        if max_wait_time_s is not None:
            argv += ["--max-wait-time", str(max_wait_time_s)]
        if not warm:
            argv.append("--no-warm-start")
        return self.supervisor.start(f"node-{name}", argv, cwd=self.workdir)

    def approve_app(self, keys_dir: Path) -> None:
        """What each partner does once it reviewed the Region's app bundle: `r2dde node approve-app`."""
        from coordinator.deployment.control import build_app_bundle

        if (keys_dir / "approved-apps.txt").exists():
            return
        fab = self.workdir / "reviewed-app.fab"
        fab.write_bytes(build_app_bundle(self.repo).content)
        argv = [
            sys.executable,
            "-m",
            "node_agent.cli",
            "approve-app",
            "--fab",
            str(fab),
            "--keys",
            str(keys_dir),
        ]
        pythonpath = os.pathsep.join(filter(None, [str(self.repo), os.environ.get("PYTHONPATH")]))
        subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": pythonpath})

    def control(self) -> SuperLinkControl:
        return SuperLinkControl(self.superlink, self.ca_certificate)

    def close(self) -> None:
        self.supervisor.close()

    def __enter__(self) -> LoopbackFederation:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
