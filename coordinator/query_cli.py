"""`r2dde query FILE`: the Region's analysts ask for a table (docs/QUERIES.md).

The file is checked first (every refusal names its rule and line); then the broker is asked for
a grant (a refusal such as a cost past the remaining budget is pinned to the ``epsilon`` line);
only then are the sites asked. Nothing reaches a node before both checks pass.

The command runs on the deployment engine; the simulation engine (``--data``) is production's
business only as an injected function: ``simulations.query_cli`` builds the command with it, and
the root CLI mounts that one (production code never imports ``simulations``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from tasks.analytics import QuerySpec

from .query_file import QueryFileError, read_query_file, refusal_from_broker
from .study_folder import read_report

#: The simulation engine: (query, partner data folder, study folder) → the study's report.
SimulationEngine = Callable[[QuerySpec, Path, Path], dict[str, object]]


def query_command(simulate: SimulationEngine | None = None) -> Callable[..., None]:
    """The ``r2dde query`` command, with a simulation engine for ``--data`` or without one."""

    def query(
        file: Annotated[Path, typer.Argument(help="The query file (YAML), see docs/QUERIES.md.")],
        out: Annotated[
            Path, typer.Option(help="Study folder (report.md, report.json, plots; replaced).")
        ] = Path("runs/query"),
        data: Annotated[
            Path | None,
            typer.Option(help="Simulation engine: a folder of partner data (<site>/formations.csv)."),
        ] = None,
        check: Annotated[bool, typer.Option("--check", help="Only check the file; ask nobody.")] = False,
        superlink: Annotated[
            str | None, typer.Option(help="Deployment engine: the SuperLink address host:port.")
        ] = None,
        ca: Annotated[Path | None, typer.Option(help="CA certificate of the SuperLink.")] = None,
        broker_url: Annotated[
            str | None, typer.Option(help="The trust broker that grants the study.")
        ] = None,
        keys: Annotated[
            Path | None, typer.Option(help="Provision folder holding the coordinator's key.")
        ] = None,
        app_dir: Annotated[Path, typer.Option("--app", help="The Flower app folder (this repo).")] = Path(
            "."
        ),
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 1800.0,
    ) -> None:
        """Check a query file, ask the broker for a grant, run it at every listed site, write the report."""
        os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
        try:
            parsed = read_query_file(file)
        except QueryFileError as exc:
            for problem in exc.problems:
                typer.secho(f"refused: {file}:{problem}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        spec = parsed.spec
        typer.echo(
            f"{file}: query {spec.id} is well-formed "
            f"({len(spec.measures)} measures, sites {', '.join(spec.sites)})"
        )
        if check:
            return
        if (data is None) == (superlink is None):
            typer.secho(
                "error: give either --data (simulation engine) or --superlink with --ca, --broker-url and "
                "--keys (deployment engine)",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(2)
        from coordinator.query_grant import QueryRefused

        try:
            if data is not None:
                if simulate is None:
                    typer.secho(
                        "error: this installation has no simulation engine", fg=typer.colors.RED, err=True
                    )
                    raise typer.Exit(2)
                report = simulate(spec, data, out)
            else:
                report = _deployed(spec, out, superlink, ca, broker_url, keys, app_dir, timeout)  # type: ignore[arg-type]
        except QueryRefused as exc:
            error = refusal_from_broker(parsed, exc.reasons) if exc.reasons else None
            for line in error.problems if error else [str(exc)]:
                typer.secho(f"refused: {file}:{line}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        audit = report.get("audit", {"verified": data is None})  # deployment: the auditor exports the books
        verified = isinstance(audit, dict) and bool(audit.get("verified"))
        typer.echo(
            f"study {report['study_id']}: {report['status']}, {report['released_values']} values released, "
            f"{report['suppressed_values']} suppressed; "
            f"audit {'verified' if verified else 'NOT verified'}"
        )
        typer.echo(f"report: {out / 'report.md'}")
        if report["status"] != "completed" or not verified:
            raise typer.Exit(1)

    return query


query = query_command()  # the deployment engine only


def _deployed(
    spec: QuerySpec,
    out: Path,
    superlink: str,
    ca: Path | None,
    broker_url: str | None,
    keys: Path | None,
    app_dir: Path,
    timeout: float,
) -> dict[str, object]:
    """Grant from the broker, then one Flower run on the SuperLink; the ServerApp writes the folder."""
    import datetime as dt

    from coordinator.analytics import QueryStudy
    from coordinator.deployment.control import DeploymentError, SuperLinkControl
    from coordinator.query_grant import min_cell_size, request_query_grant, study_request

    if ca is None or broker_url is None or keys is None:
        typer.secho("error: --superlink needs --ca, --broker-url and --keys", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    study_id = f"{spec.id}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    request = study_request(study_id, spec.purpose, spec.sites, spec.fields(), spec.epsilon)
    grant = request_query_grant(request, broker_url=broker_url, keys=keys)
    try:
        with SuperLinkControl(superlink, ca) as control:
            nodes = {node: site for node, site in control.node_sites().items() if site in spec.sites}
            study = QueryStudy(
                study_id=study_id,
                sites=spec.sites,
                study_dir=out.resolve(),
                grant=grant,
                delta=request.delta,
                epsilon=spec.epsilon,
                min_cell_size=min_cell_size(spec.purpose),
                query=spec.to_json(),
                extra={"node_sites": nodes},
            )
            control.wait(control.start_run(app_dir, study.to_run_config()), timeout_s=timeout)
    except DeploymentError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    return read_report(out)
