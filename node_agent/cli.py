"""`r2dde node …`: what a partner's IT team runs — the site's SuperNode."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from node_agent.deployment.approved_app import APPROVED_APPS_FILE, AppNotApproved, code_digest, write_launcher
from node_agent.deployment.supernode import DEFAULT_RUNTIME_PORT, SuperNodeSettings
from policies.loader import PolicyLoadError
from tasks.reference import ENV_VAR as REFERENCE_ENV
from tasks.reference import ReferenceDataError, reference_data_dir

app = typer.Typer(help="A partner's node agent: the site's Flower SuperNode.", no_args_is_help=True)


@app.callback()
def node() -> None:
    """A partner's node agent: the site's Flower SuperNode."""


def supernode_environment(flwr_home: Path | None) -> dict[str, str]:
    """This venv first on PATH (the SuperNode launches ``flwr-clientapp`` by name), and before it
    the partner's ``flwr-clientapp`` launcher, which runs only app bundles the partner approved
    (``node_agent.deployment.approved_app``); telemetry off.

    The ClientApp runs from the app bundle Flower installs under FLWR_HOME, where the default
    ``<repo>/../shared/data`` means nothing: the reference-data folder is resolved here, once.
    """
    env = dict(os.environ)
    home = (flwr_home or Path.home() / ".flwr").resolve()
    launcher = write_launcher(home / "r2dde-bin")
    env["PATH"] = os.pathsep.join(
        [str(launcher.parent), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    with contextlib.suppress(ReferenceDataError):
        env[REFERENCE_ENV] = str(reference_data_dir())
    if flwr_home is not None:
        flwr_home.mkdir(parents=True, exist_ok=True)
        env["FLWR_HOME"] = str(flwr_home.resolve())
    return env


@app.command("start")
def start(
    site: Annotated[str, typer.Option(help="This partner's site id, e.g. france_travail.")],
    data_dir: Annotated[Path, typer.Option(help="Folder holding parcours.csv.")],
    keys_dir: Annotated[Path, typer.Option(help="This site's folder from `r2dde provision` (nodes/<site>).")],
    broker_url: Annotated[str, typer.Option(help="The trust broker's URL.")],
    superlink: Annotated[str, typer.Option(help="The Region's SuperLink address host:port.")],
    runtime_port: Annotated[
        int, typer.Option(help="Loopback port of the SuperNode's own Runtime API (one per node on a host).")
    ] = DEFAULT_RUNTIME_PORT,
    flwr_home: Annotated[
        Path | None, typer.Option(help="Flower's working folder for this node (installed app bundles).")
    ] = None,
    max_wait_time: Annotated[
        float | None, typer.Option(help="Give up after this many seconds without the SuperLink.")
    ] = None,
    site_policy: Annotated[
        Path | None, typer.Option(help="This site's own policy document (YAML) for the local veto.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Check and print the command, do not start.")] = False,
) -> None:
    """Check this site's files, say what the node exposes and trusts, then become its SuperNode."""
    settings = SuperNodeSettings(
        site=site,
        data_dir=data_dir,
        keys_dir=keys_dir,
        broker_url=broker_url,
        superlink=superlink,
        runtime_port=runtime_port,
        max_wait_time_s=max_wait_time,
        site_policy=site_policy,
    )
    try:
        settings.check()
        argv = settings.argv()
    except (ValueError, FileNotFoundError, PolicyLoadError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"R2DDE node agent — SuperNode of {site}")
    for line in settings.describe():
        typer.echo(f"  {line}")
    if dry_run:
        typer.echo(" ".join(argv))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the SuperNode (same pid): signals from systemd/docker/Ctrl-C reach Flower directly.
    os.execve(argv[0], argv, supernode_environment(flwr_home))


@app.command("approve-app")
def approve_app(
    fab: Annotated[Path, typer.Option(help="The app bundle (.fab) this partner reviewed.")],
    keys_dir: Annotated[Path, typer.Option(help="This site's keys folder (nodes/<site>).")],
) -> None:
    """Add a reviewed app bundle's code digest to this node's allow-list: only listed apps run here."""
    try:
        digest = code_digest(fab.read_bytes())
    except (OSError, AppNotApproved) as exc:
        typer.secho(f"error: {fab}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    allow_list = keys_dir / APPROVED_APPS_FILE
    listed = allow_list.read_text(encoding="utf-8") if allow_list.exists() else ""
    if digest not in listed:
        allow_list.write_text(listed + f"{digest}  # {fab.name}\n", encoding="utf-8")
    typer.echo(f"{digest} approved in {allow_list}")


if __name__ == "__main__":  # pragma: no cover - `python -m node_agent.cli` before the root CLI mounts it
    app()
