"""The Region's side of Flower's Control API: register SuperNodes, submit a study, follow it.

We drive Flower's own ``ControlHttpClient`` (what ``flwr run`` and ``flwr supernode register``
use) rather than shelling out to ``flwr``: the ``flwr`` CLI migrates and comments out the
``[tool.flwr.federations]`` table of the app's ``pyproject.toml`` in place, and walks the
whole tree (``.venv`` included) to build the app bundle.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import click
import tomli
import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.cli.build import build_fab_from_files
from flwr.cli.typing import SuperLinkConnection
from flwr.cli.utils import (
    SUPERLINK_UNAVAILABLE_MESSAGE,
    flwr_cli_exc_handler,
    init_http_client_from_connection,
)
from flwr.common.serde import fab_to_proto, user_config_to_proto
from flwr.proto.control_pb2 import (  # pylint: disable=no-name-in-module
    ListNodesRequest,
    ListRunsRequest,
    RegisterNodeRequest,
    StartRunRequest,
    StopRunRequest,
    StreamLogsRequest,
)
from flwr.supercore.fab import Fab
from flwr.supercore.primitives.asymmetric import public_key_to_bytes, uses_nist_ec_curve

# Folders never part of the app bundle: pruned before walking (Flower would walk then drop them).
_PRUNED_DIRS = frozenset(
    {
        ".venv",
        "venv",
        ".git",
        "runs",
        "build",
        "dist",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".mypy_cache",
        "benchmarks",
        "tests",
        "docker",
        "docs",
    }
)
_FINISHED = "finished"


class DeploymentError(RuntimeError):
    """A deployment step failed; the message is meant for the operator, not a traceback."""


@dataclass(frozen=True)
class RunOutcome:
    """How a study's Flower run ended."""

    run_id: int
    status: str  # pending | starting | running | finished
    sub_status: str  # completed | failed | stopped (when finished)
    details: str
    elapsed_s: float

    @property
    def completed(self) -> bool:
        return self.status == _FINISHED and self.sub_status == "completed"


@dataclass(frozen=True)
class RegisteredSuperNode:
    """A SuperNode key the SuperLink accepts."""

    name: str
    node_id: int
    newly_registered: bool


def load_supernode_public_key(path: Path) -> bytes:
    """The SuperLink's encoding of an OpenSSH NIST-curve public key; a clear error otherwise."""
    try:
        key = serialization.load_ssh_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise DeploymentError(f"{path}: cannot read SuperNode public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not uses_nist_ec_curve(key):
        raise DeploymentError(f"{path}: SuperNode keys must be OpenSSH EC keys on a NIST curve (P-384)")
    return public_key_to_bytes(key)


def collect_app_files(app_dir: Path) -> dict[str, Path]:
    """The app's files as Flower's bundle builder expects them (relative POSIX path -> file)."""
    app_dir = Path(app_dir).resolve()
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(app_dir, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in _PRUNED_DIRS and not d.endswith(".egg-info")]
        for filename in filenames:
            path = Path(dirpath) / filename
            if path.is_symlink():
                continue
            files[path.relative_to(app_dir).as_posix()] = path
    return files


def declare_run_config(pyproject: bytes, run_config: Mapping[str, Any]) -> bytes:
    """``pyproject`` with every key of ``run_config`` declared in ``[tool.flwr.app.config]``.

    Why: Flower only overrides keys the app declares; a study's config (grant, sites, …) is
    defined by ``StudyConfig``, so undeclared keys are added to the bundle's copy (declared
    keys keep their defaults; the overrides are sent with the run as usual).
    """
    config = tomli.loads(pyproject.decode("utf-8"))
    app = config.setdefault("tool", {}).setdefault("flwr", {}).setdefault("app", {})
    declared = app.setdefault("config", {})
    missing = {k: v for k, v in run_config.items() if k not in declared}
    if not missing:
        return pyproject
    declared.update(missing)
    return tomli_w.dumps(config).encode("utf-8")


def build_app_bundle(app_dir: Path, run_config: Mapping[str, Any] | None = None) -> Fab:
    """Flower App Bundle of ``app_dir`` (its ``[tool.flwr.federations]`` table is dropped by Flower)."""
    files: dict[str, Path | bytes] = dict(collect_app_files(app_dir))
    if "pyproject.toml" not in files:
        raise DeploymentError(f"{app_dir}: no pyproject.toml, not a Flower app folder")
    if run_config:
        pyproject = Path(files["pyproject.toml"]).read_bytes()  # type: ignore[arg-type]
        files["pyproject.toml"] = declare_run_config(pyproject, run_config)
    try:
        fab_bytes, _ = build_fab_from_files(files)
    except ValueError as exc:
        raise DeploymentError(f"{app_dir}: cannot bundle the Flower app: {exc}") from exc
    return Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})


#: Flower's CLI messages that speak of its own configuration files, in our operators' words.
_PLAIN_WORDS = {
    SUPERLINK_UNAVAILABLE_MESSAGE: (
        "the SuperLink does not answer (stopped, restarting, or unreachable from here)"
    ),
}


@contextmanager
def _operator_errors(action: str) -> Iterator[None]:
    try:
        with flwr_cli_exc_handler():
            yield
    except click.ClickException as exc:
        message = exc.format_message()
        raise DeploymentError(f"{action}: {_PLAIN_WORDS.get(message, message)}") from None


#: Consecutive failed status reads ``wait`` lets pass before giving up.
WAIT_MISSES = 5


class SuperLinkControl:
    """A Control API session with the Region's SuperLink over TLS (CA pinned)."""

    def __init__(self, address: str, ca_certificate: Path) -> None:
        ca_certificate = Path(ca_certificate).resolve()
        if not ca_certificate.is_file():
            raise DeploymentError(f"{ca_certificate}: CA certificate not found")
        connection = SuperLinkConnection(
            name="r2dde-deployment", address=address, root_certificates=str(ca_certificate)
        )
        self.address = address
        with _operator_errors(f"connecting to the SuperLink at {address}"):
            self._client = init_http_client_from_connection(connection)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SuperLinkControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def registered_keys(self) -> dict[bytes, int]:
        """Public key bytes -> node id of every SuperNode registered (and not unregistered)."""
        with _operator_errors("listing SuperNodes"):
            response = self._client.ListNodes(ListNodesRequest())
        return {
            info.public_key: info.node_id
            for info in response.nodes_info
            if not info.HasField("unregistered_at")
        }

    def node_statuses(self) -> dict[str, str]:
        """Registered SuperNode name -> Flower status (registered, online, offline, unregistered)."""
        with _operator_errors("listing SuperNodes"):
            response = self._client.ListNodes(ListNodesRequest())
        nodes = response.nodes_info
        return {(n.name if n.HasField("name") else str(n.node_id)): n.status for n in nodes}

    def node_sites(self) -> dict[int, str]:
        """Node id -> the name it was registered under (the site), for naming nodes that go silent."""
        with _operator_errors("listing SuperNodes"):
            response = self._client.ListNodes(ListNodesRequest())
        return {int(n.node_id): n.name for n in response.nodes_info if n.HasField("name")}

    def wait_online(self, names: Sequence[str], *, timeout_s: float, poll_s: float = 0.3) -> None:
        """Block until every named SuperNode is online (connected and authenticated)."""
        deadline = time.monotonic() + timeout_s
        while True:
            statuses = self.node_statuses()
            waiting = [n for n in names if statuses.get(n) != "online"]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise DeploymentError(f"SuperNodes not online after {timeout_s:.0f} s: {', '.join(waiting)}")
            time.sleep(poll_s)

    def register_supernode(self, name: str, public_key_path: Path) -> RegisteredSuperNode:
        """Register a site's SuperNode key; idempotent (a key already registered is reported as such)."""
        public_key = load_supernode_public_key(public_key_path)
        known = self.registered_keys()
        if public_key in known:
            return RegisteredSuperNode(name=name, node_id=known[public_key], newly_registered=False)
        with _operator_errors(f"registering the SuperNode of {name}"):
            response = self._client.RegisterNode(RegisterNodeRequest(public_key=public_key, name=name))
        return RegisteredSuperNode(name=name, node_id=int(response.node_id), newly_registered=True)

    def start_run(self, app_dir: Path, run_config: Mapping[str, Any] | None = None) -> int:
        """Submit the Flower app at ``app_dir`` with run-config overrides; returns the run id."""
        fab = build_app_bundle(app_dir, run_config)
        request = StartRunRequest(
            fab=fab_to_proto(fab),
            override_config=user_config_to_proto(dict(run_config or {})),
            federation="",
        )
        with _operator_errors("starting the run"):
            response = self._client.StartRun(request)
        if not response.HasField("run_id"):
            raise DeploymentError("the SuperLink did not start the run")
        return int(response.run_id)

    def run_status(self, run_id: int) -> tuple[str, str, str]:
        with _operator_errors(f"reading the status of run {run_id}"):
            response = self._client.ListRuns(ListRunsRequest(run_id=run_id))
        if run_id not in response.run_dict:
            raise DeploymentError(f"run {run_id} is unknown to the SuperLink at {self.address}")
        status = response.run_dict[run_id].status
        return status.status, status.sub_status, status.details

    def wait(
        self,
        run_id: int,
        *,
        timeout_s: float,
        poll_s: float = 0.5,
        on_poll: Callable[[str], None] | None = None,
    ) -> RunOutcome:
        """Poll until the run is finished; on timeout the run is stopped and reported as such.

        ``on_poll`` is called with the run's status at every poll (progress displays).
        """
        start, misses = time.monotonic(), 0
        while True:
            try:
                status, sub_status, details = self.run_status(run_id)
                misses = 0
            except DeploymentError:
                # A busy SuperLink can answer one status read with an internal error (SQLite "database
                # is locked" under load): the run goes on, so does the wait — up to a few in a row.
                misses += 1
                if misses > WAIT_MISSES:
                    raise
                time.sleep(poll_s)
                continue
            if on_poll is not None:
                on_poll(status)
            elapsed = time.monotonic() - start
            if status == _FINISHED:
                return RunOutcome(run_id, status, sub_status, details, elapsed)
            if elapsed > timeout_s:
                self.stop_run(run_id)
                return RunOutcome(run_id, status, "timeout", f"not finished after {timeout_s:.0f} s", elapsed)
            time.sleep(poll_s)

    def stop_run(self, run_id: int) -> None:
        with _operator_errors(f"stopping run {run_id}"):
            self._client.StopRun(StopRunRequest(run_id=run_id))

    def logs(self, run_id: int) -> str:
        """The ServerApp's log of a finished run, as Flower stored it."""
        chunks: list[str] = []
        with _operator_errors(f"reading the logs of run {run_id}"):
            for response in self._client.StreamLogs(StreamLogsRequest(run_id=run_id, after_timestamp=0.0)):
                chunks.append(response.log_output)
        return "".join(chunks)
