"""`r2dde query FILE`: the Region's analysts ask for a table (docs/QUERIES.md).

The file is checked first (every refusal names its rule and line); then the broker is asked for
a grant (a refusal such as a cost past the remaining budget is pinned to the ``epsilon`` line);
only then are the sites asked. Nothing reaches a node before both checks pass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .query_file import QueryFileError, read_query_file, refusal_from_broker


def query(
    file: Annotated[Path, typer.Argument(help="The query file (YAML), see docs/QUERIES.md.")],
    out: Annotated[Path, typer.Option(help="Study folder (report.md, report.json, plots; replaced).")] = Path(
        "runs/query"
    ),
    data: Annotated[
        Path | None,
        typer.Option(help="Simulation engine: a folder of partner data (<site>/formations.csv)."),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Only check the file; ask nobody.")] = False,
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
    if data is None:
        typer.secho(
            "error: give --data (simulation engine); on the deployment engine run the query through "
            "`r2dde coordinator` (see docs/QUERIES.md)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    from coordinator.query_grant import QueryRefused
    from simulations.scenarios import run_query_simulation  # the simulation engine only

    try:
        report = run_query_simulation(spec, data, out)
    except QueryRefused as exc:
        error = refusal_from_broker(parsed, exc.reasons) if exc.reasons else None
        for line in error.problems if error else [str(exc)]:
            typer.secho(f"refused: {file}:{line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    audit = report.get("audit", {})
    typer.echo(
        f"study {report['study_id']}: {report['status']}, {report['released_values']} values released, "
        f"{report['suppressed_values']} suppressed; "
        f"audit {'verified' if audit.get('verified') else 'NOT verified'}"
    )
    typer.echo(f"report: {out / 'report.md'}")
    if report["status"] != "completed" or not audit.get("verified"):
        raise typer.Exit(1)
