"""``r2dde audit …``: the auditor's commands, offline, on an export of the broker.

``verify EXPORT`` exits 0 when everything holds, 1 when a problem was found (each listed with its
line), 2 when the file cannot be read. ``report EXPORT --out DIR`` writes ``report.md`` and one PNG per
site. The ``export`` command (which talks to the broker's store) is the service's, mounted from
``trust_broker/audit/export_cli.py`` when present: that module defines ``register(app)``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from trust_broker.audit.verify import VerificationReport

app = typer.Typer(
    help="Audit the trust broker offline: hash chain, signatures, privacy budgets.", no_args_is_help=True
)

EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2
PIPED_WIDTH = 160  # rich would squeeze tables to 80 columns when piped to a file; an auditor keeps logs


def _console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)


ExportArg = Annotated[Path, typer.Argument(help="JSON Lines export of the broker (r2dde-audit/1)")]


def _load(export: Path, console: Console, receipts: Path | None = None) -> VerificationReport:
    from trust_broker.audit.export import ExportError
    from trust_broker.audit.verify import verify_export  # imports the accountants: only when used

    try:
        return verify_export(export, receipts=receipts)
    except ExportError as exc:
        console.print(f"[bold red]unreadable export[/] {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None


@app.command()
def verify(
    export: ExportArg,
    receipts: Annotated[
        Path | None,
        typer.Option(
            "--receipts",
            help="the nodes' receipts (a folder of <site>.jsonl, or one file): the export must hold "
            "every event the broker signed for them",
        ),
    ] = None,
) -> None:
    """Check the chain, every signature, the nodes' receipts, and recompute each account's ε."""
    console = _console()
    report = _load(export, console, receipts)
    table = Table(title=f"Privacy budget accounts — {export.name}")
    for column in ("site", "dataset", "period", "cap", "δ", "ε recorded", "ε recomputed", "ε PLD", "status"):
        table.add_column(
            column, justify="right" if column in {"cap", "δ"} or column.startswith("ε") else "left"
        )
    for key, account in sorted(report.accounts.items()):
        status = "[red]OVERSPENT[/]" if account.overspent else "[green]ok[/]"
        table.add_row(
            key.site,
            key.dataset,
            key.period,
            f"{account.cap:g}",
            f"{account.delta:.2g}",
            f"{account.epsilon_recorded:.4f}",
            f"{account.epsilon_recomputed:.4f}",
            "" if account.epsilon_pld is None else f"{account.epsilon_pld:.4f}",
            status,
        )
    console.print(table)
    witnessed = f", {report.receipts} node receipt(s) checked" if receipts is not None else ""
    console.print(f"{report.events} events, {report.heads} signed head(s){witnessed}")
    if report.ok:
        console.print(
            "[bold green]OK[/]: chain intact, signatures valid, budgets recomputed exactly "
            "(floating-point rounding only), no cap nor grant passed"
        )
        raise typer.Exit(EXIT_OK)
    problems = Table(title=f"{len(report.problems)} problem(s)")
    for column in ("line", "seq", "rule", "detail"):
        problems.add_column(column)
    for problem in report.problems:
        seq = "" if problem.seq is None else str(problem.seq)
        problems.add_row(str(problem.line), seq, problem.rule, problem.detail)
    console.print(problems)
    raise typer.Exit(EXIT_PROBLEMS)


@app.command()
def report(
    export: ExportArg,
    out: Annotated[Path, typer.Option("--out", help="folder for report.md and the PNGs")] = Path(
        "audit-report"
    ),
) -> None:
    """Write a readable report (Markdown + one PNG per site) of each site's ε over time against its cap."""
    from trust_broker.audit.report import write_report

    console = _console()
    verification = _load(export, console)
    markdown = write_report(verification, out)
    verdict = "[green]verified[/]" if verification.ok else f"[red]{len(verification.problems)} problem(s)[/]"
    console.print(f"report written to {markdown} ({verdict})")


def _mount_export_command() -> None:
    """Hook for the service's ``export`` command, kept in its own module (it needs the store)."""
    try:
        export_cli = importlib.import_module("trust_broker.audit.export_cli")
    except ModuleNotFoundError as exc:
        if exc.name != "trust_broker.audit.export_cli":
            raise
        return
    export_cli.register(app)


_mount_export_command()


if __name__ == "__main__":
    app()
