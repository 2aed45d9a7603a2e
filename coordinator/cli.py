"""`r2dde coordinator …`: what the Region runs — its SuperLink, node registration, study runs.

Flower, the broker client and pandas are imported inside the commands: `--help` stays instant.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from coordinator.deployment.control import SuperLinkControl
    from coordinator.study_config import StudyConfig

DEFAULT_SUPERLINK_PORT = 9093  # coordinator.deployment.superlink.DEFAULT_SUPERLINK_PORT (a test checks)
USE_CASE_1 = {"task": "employment_outcome", "purpose": "autodiagnostic_mobilite"}  # deployment.study
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
    from coordinator.deployment.control import DeploymentError

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


def state_file(database: Path | None, log_dir: Path) -> Path:
    """Where the SuperLink keeps its state: on disk by default, so that after a restart it still knows
    the registered SuperNodes and the nodes started by `r2dde node start` get back in by themselves."""
    path = database if database is not None else log_dir / "superlink-state.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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
        Path | None,
        typer.Option(help="SQLite file for the SuperLink state (default: <log-dir>/superlink-state.db)."),
    ] = None,
    memory_state: Annotated[
        bool, typer.Option(help="Keep the state in memory: a restart forgets registrations and runs.")
    ] = False,
    register: Annotated[
        bool, typer.Option(help="Register every key in <keys>/public/supernodes/ once the SuperLink listens.")
    ] = True,
    log_dir: Annotated[Path, typer.Option(help="Folder for the SuperLink's log.")] = Path("runs/superlink"),
) -> None:
    """Start the SuperLink (TLS, SuperNode authentication, no runtime installs) in the foreground."""
    from coordinator.deployment.control import DeploymentError, SuperLinkControl
    from coordinator.deployment.processes import ProcessSupervisor, wait_for_tls_port
    from coordinator.deployment.superlink import SuperLinkSettings, SuperLinkTls
    from tasks.reference import ENV_VAR as REFERENCE_ENV
    from tasks.reference import ReferenceDataError, reference_data_dir

    try:
        state = None if memory_state else state_file(database, log_dir)
        settings = SuperLinkSettings(
            tls=SuperLinkTls.from_provision(keys), host=host, port=port, database=state
        )
        public_keys = supernode_public_keys(keys) if register else {}
    except (FileNotFoundError, DeploymentError) as exc:
        raise _fail(str(exc)) from None
    typer.echo("R2DDE coordinator — SuperLink")
    _say(settings.describe())
    env = {}
    with contextlib.suppress(ReferenceDataError):  # the ServerApp runs from Flower's copy of the app
        env[REFERENCE_ENV] = str(reference_data_dir())
    supervisor = ProcessSupervisor(workdir=log_dir, env=env)
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
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="A provision folder, a folder of <site>.pub, or a .pub file."),
    ] = None,
    keys_argument: Annotated[Path | None, typer.Argument(hidden=True, metavar="KEYS")] = None,  # old form
) -> None:
    """Register SuperNode public keys with a running SuperLink (idempotent)."""
    from coordinator.deployment.control import DeploymentError, SuperLinkControl

    keys = keys or keys_argument
    if keys is None:
        raise _fail("missing option '--keys' (the SuperNodes' public keys)")
    try:
        public_keys = {keys.stem: keys} if keys.is_file() else supernode_public_keys(keys)
        with SuperLinkControl(superlink, ca) as control:
            register_all(control, public_keys)
    except DeploymentError as exc:
        raise _fail(str(exc)) from None


def _round_done(server_round: int, planned: int, trained: list[str]) -> None:
    sites = ", ".join(trained) or "none"
    typer.echo(f"  round {server_round} of {planned} done: {len(trained)} site(s) trained ({sites})")


def _study_config(
    study_id: str,
    task: str,
    sites: str,
    rounds: int,
    epsilon: float,
    min_sites: int,
    study_dir: Path,
    overrides: list[str] | None,
) -> StudyConfig:
    import click
    from flwr.common.config import parse_config_args

    from coordinator.study_config import StudyConfig, StudyConfigError

    run_config: dict[str, Any] = {
        "study-id": study_id,
        "task": task,
        "sites": sites,
        "num-server-rounds": rounds,
        "target-epsilon": epsilon,
        "min-sites": min_sites,
        "study-dir": str(study_dir.resolve()),
    }
    try:
        run_config.update(parse_config_args(overrides))
        return StudyConfig.from_run_config(run_config)
    except (StudyConfigError, ValueError, click.ClickException) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        raise _fail(f"study configuration: {message}") from None


@app.command("bundle")
def bundle(
    out: Annotated[Path, typer.Option(help="Where to write the app bundle (.fab) partners review.")],
    app_dir: Annotated[Path, typer.Option("--app", help="The Flower app folder (this repo).")] = Path("."),
) -> None:
    """Write the app bundle `run-study` submits, for partners to review and approve
    (`r2dde node approve-app`): a node runs no other bundle."""
    from coordinator.deployment.control import DeploymentError, build_app_bundle

    try:
        out.write_bytes(build_app_bundle(app_dir).content)
    except (DeploymentError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"app bundle of {app_dir.resolve()} written to {out}")


@app.command("run-study")
def run_study(
    superlink: Annotated[str, typer.Option(help="The SuperLink address host:port.")],
    ca: Annotated[Path, typer.Option(help="CA certificate that issued the SuperLink's certificate.")],
    sites: Annotated[str, typer.Option(help="Comma-separated site ids taking part.")],
    broker_url: Annotated[str, typer.Option(help="The trust broker that grants the study.")],
    keys: Annotated[Path, typer.Option(help="Provision folder holding coordinator/coordinator.key.")],
    study_id: Annotated[str, typer.Option(help="Study id (default: usecase1-<UTC time>).")] = "",
    task: Annotated[str, typer.Option(help="Task id.")] = USE_CASE_1["task"],
    purpose: Annotated[str, typer.Option(help="Purpose (finalité) id.")] = USE_CASE_1["purpose"],
    rounds: Annotated[int, typer.Option(help="Federated rounds.")] = 3,
    epsilon: Annotated[float, typer.Option(help="Target ε per site for the study.")] = 3.0,
    min_sites: Annotated[int, typer.Option(help="Sites needed for a round to count.")] = 2,
    app_dir: Annotated[Path, typer.Option("--app", help="The Flower app folder (this repo).")] = Path("."),
    study_dir: Annotated[Path, typer.Option(help="Where the ServerApp writes report and model.")] = Path(
        "runs/studies"
    ),
    config: Annotated[
        list[str] | None,
        typer.Option("--config", "-c", help="Extra run-config key=value (TOML values), repeatable."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the run is stopped.")] = 3600.0,
) -> None:
    """Ask the broker for a grant, submit the study to the SuperLink, wait, say how each site took part."""
    from coordinator.deployment.control import DeploymentError, SuperLinkControl
    from coordinator.deployment.study import run_deployed_study
    from coordinator.grant import GrantRequestError, request_grant

    study_id = study_id or f"usecase1-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    study = _study_config(study_id, task, sites, rounds, epsilon, min_sites, study_dir / study_id, config)
    typer.echo(f"study {study.study_id}: purpose {purpose}, task {task}, sites {', '.join(study.sites)}")
    try:
        study = request_grant(study, purpose=purpose, broker_url=broker_url, keys=keys)
        typer.echo(f"  granted by the broker at {broker_url} (fields: {', '.join(study.fields)})")
        typer.echo(f"  submitting {app_dir.resolve()} to https://{superlink} (CA {ca})")
        typer.echo("  crosses the network: app bundle + run config (grant) out; model updates and metrics in")
        typer.echo("  waiting for the rounds (each ends when every site has trained and evaluated)…")
        with SuperLinkControl(superlink, ca) as control:
            deployed = run_deployed_study(control, app_dir, study, timeout_s=timeout, on_round=_round_done)
    except (DeploymentError, GrantRequestError) as exc:
        raise _fail(str(exc)) from None
    outcome = deployed.outcome
    typer.echo(
        f"study {study.study_id} {deployed.verdict()} (run {outcome.run_id}, {outcome.elapsed_s:.1f} s)"
    )
    if outcome.details:
        typer.echo(f"  details: {outcome.details}")
    for line in deployed.site_lines():
        typer.echo(f"  {line}")
    where = study.study_dir if deployed.report else f"{study.study_dir} on the SuperLink's host"
    typer.echo(f"  report and model: {where}")
    if not deployed.succeeded:  # aborted, failed or unknown: never exit 0
        raise typer.Exit(code=1)


if __name__ == "__main__":  # pragma: no cover - `python -m coordinator.cli` before the root CLI mounts it
    sys.exit(app())
