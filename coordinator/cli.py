"""`r2dde coordinator …`: what the Region runs — its SuperLink, node registration, study runs."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from flwr.common.config import parse_config_args

from coordinator.deployment.control import DeploymentError, RunOutcome, SuperLinkControl
from coordinator.deployment.processes import ProcessSupervisor, wait_for_tls_port
from coordinator.deployment.superlink import DEFAULT_SUPERLINK_PORT, SuperLinkSettings, SuperLinkTls

app = typer.Typer(
    help="The Region's coordinator: SuperLink, SuperNode registration, study runs.", no_args_is_help=True
)

SUPERNODE_KEYS_SUBDIR = Path("public") / "supernodes"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _say(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"  {line}")


def supernode_public_keys(folder: Path) -> dict[str, Path]:
    """site -> OpenSSH public key file, from ``<keys>/public/supernodes/<site>.pub``."""
    folder = Path(folder)
    directory = folder / SUPERNODE_KEYS_SUBDIR if (folder / SUPERNODE_KEYS_SUBDIR).is_dir() else folder
    keys = {p.stem: p for p in sorted(directory.glob("*.pub"))}
    if not keys:
        raise DeploymentError(f"{directory}: no SuperNode public key (*.pub) to register")
    return keys


def register_all(control: SuperLinkControl, keys: dict[str, Path]) -> None:
    for site, path in keys.items():
        node = control.register_supernode(site, path)
        state = "registered" if node.newly_registered else "already registered"
        typer.echo(f"  SuperNode of {site}: {state} (node id {node.node_id}, key {path})")


class _Stop(Exception):
    """Raised from a signal handler to leave the foreground wait."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@app.command("start")
def start(
    keys: Annotated[Path, typer.Option(help="Folder written by `r2dde provision` (superlink/, public/).")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 for partners' nodes.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The SuperLink's single HTTPS port.")] = DEFAULT_SUPERLINK_PORT,
    database: Annotated[
        Path | None, typer.Option(help="SQLite file for the SuperLink state (default: in memory).")
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Register every key in <keys>/public/supernodes/ once the SuperLink listens.")
    ] = True,
    log_dir: Annotated[Path, typer.Option(help="Folder for the SuperLink's log.")] = Path("runs/superlink"),
) -> None:
    """Start the SuperLink (TLS, SuperNode authentication, no runtime installs) in the foreground."""
    try:
        settings = SuperLinkSettings(
            tls=SuperLinkTls.from_provision(keys), host=host, port=port, database=database
        )
        public_keys = supernode_public_keys(keys) if register else {}
    except (FileNotFoundError, DeploymentError) as exc:
        raise _fail(str(exc)) from None
    typer.echo("R2DDE coordinator — SuperLink")
    _say(settings.describe())
    supervisor = ProcessSupervisor(workdir=log_dir)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        superlink = supervisor.start("superlink", settings.argv(), capture=False)
        wait_for_tls_port(settings.local_host, port, settings.tls.ca_certificate, watch=superlink)
        if public_keys:
            with SuperLinkControl(settings.address, settings.tls.ca_certificate) as control:
                register_all(control, public_keys)
        typer.echo(f"SuperLink ready on {settings.address}; Ctrl-C stops it.")
        while superlink.alive():
            time.sleep(0.5)
        raise _fail(f"the SuperLink exited with code {superlink.popen.returncode}")
    except _Stop:
        typer.echo("stopping the SuperLink…")
    except (DeploymentError, RuntimeError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    finally:
        supervisor.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("register")
def register_cmd(
    superlink: Annotated[str, typer.Option(help="The SuperLink address host:port.")],
    ca: Annotated[Path, typer.Option(help="CA certificate that issued the SuperLink's certificate.")],
    keys: Annotated[Path, typer.Argument(help="A provision folder, a folder of <site>.pub, or a .pub file.")],
) -> None:
    """Register SuperNode public keys with a running SuperLink (idempotent)."""
    try:
        public_keys = {keys.stem: keys} if keys.is_file() else supernode_public_keys(keys)
        with SuperLinkControl(superlink, ca) as control:
            register_all(control, public_keys)
    except DeploymentError as exc:
        raise _fail(str(exc)) from None


def _report(outcome: RunOutcome, study_dir: Path | None) -> None:
    verdict = "completed" if outcome.completed else f"did NOT complete ({outcome.sub_status})"
    typer.echo(f"run {outcome.run_id} {verdict} in {outcome.elapsed_s:.1f} s")
    if outcome.details:
        typer.echo(f"  details: {outcome.details}")
    if study_dir is not None:
        typer.echo(f"  study outputs (report, model) under {study_dir}")


@app.command("run-study")
def run_study(
    superlink: Annotated[str, typer.Option(help="The SuperLink address host:port.")],
    ca: Annotated[Path, typer.Option(help="CA certificate that issued the SuperLink's certificate.")],
    app_dir: Annotated[Path, typer.Option("--app", help="The Flower app folder (this repo).")] = Path("."),
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Run-config override key=value (TOML values), repeatable."),
    ] = None,
    study_dir: Annotated[
        Path | None, typer.Option(help="Where the ServerApp writes the study (absolute path is passed).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the run is stopped.")] = 3600.0,
    show_logs: Annotated[bool, typer.Option(help="Print the ServerApp's log when the run ends.")] = True,
) -> None:
    """Submit a study to the SuperLink, wait for it, and say how it ended (exit 1 if it did not complete)."""
    try:
        overrides: dict[str, Any] = parse_config_args(config)
    except Exception as exc:  # noqa: BLE001 - Flower raises click errors for bad TOML values
        raise _fail(f"--config: {exc}") from None
    if study_dir is not None:
        overrides["study-dir"] = str(study_dir.resolve())
    typer.echo(f"submitting {app_dir.resolve()} to https://{superlink} (CA {ca})")
    typer.echo("  crosses the network: the app bundle and run config out; updates and metrics in; TLS only")
    try:
        with SuperLinkControl(superlink, ca) as control:
            run_id = control.start_run(app_dir, overrides)
            typer.echo(f"  run {run_id} started; waiting (timeout {timeout:.0f} s)")
            outcome = control.wait(run_id, timeout_s=timeout)
            if show_logs:
                typer.echo(control.logs(run_id))
    except DeploymentError as exc:
        raise _fail(str(exc)) from None
    _report(outcome, study_dir)
    if not outcome.completed:
        raise typer.Exit(code=1)


if __name__ == "__main__":  # pragma: no cover - `python -m coordinator.cli` before the root CLI mounts it
    sys.exit(app())
