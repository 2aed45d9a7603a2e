"""`r2dde simulate`: a whole study on Flower's simulation engine, with a progress display."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()


def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="usecase1 (training), usecase2 (companies), usecase3 (DP statistics on trainings)"
            " or adult (benchmark)"
        ),
    ] = "usecase1",
    sites: Annotated[
        int,
        typer.Option(
            min=1,
            help="number of partner sites (usecase1: up to 100, France Travail agencies and Missions"
            " Locales of PACA beyond 3)",
        ),
    ] = 3,
    rounds: Annotated[int, typer.Option(min=1, help="federated rounds (usecase2: Lloyd iterations)")] = 3,
    epsilon: Annotated[
        float, typer.Option(help="ε each site may spend on the whole study ('inf': no DP)")
    ] = 3.0,
    out: Annotated[Path, typer.Option(help="study folder (replaced if it exists)")] = Path("runs/demo"),
    people: Annotated[
        int | None,
        typer.Option(min=100, help="distinct people in the synthetic population (default: the scenario's)"),
    ] = None,
    companies: Annotated[
        int, typer.Option(min=150, help="distinct establishments in the synthetic population (usecase2)")
    ] = 20000,
    seed: Annotated[int, typer.Option(help="seed of the synthetic data and the model")] = 42,
    strategy: Annotated[
        str, typer.Option(help="aggregation strategy (fedavg, fedadam, fedmedian, …)")
    ] = "fedavg",
    local_epochs: Annotated[int, typer.Option(min=1)] = 2,
    batch_size: Annotated[int, typer.Option(min=8)] = 256,
    learning_rate: Annotated[float, typer.Option()] = 0.01,
    opt_outs: Annotated[
        int, typer.Option(min=0, help="people who objected at the first site before the study (usecase1)")
    ] = 20,
) -> None:
    """Synthesize partner data, run one study across the sites, write its report and audit."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from coordinator.report import amend_report
    from coordinator.study_config import StudyConfig

    from .scenarios import SCENARIOS, new_study_id, run_scenario

    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    chosen = SCENARIOS[scenario]
    if sites > chosen.site_limit:
        raise typer.BadParameter(f"scenario {scenario} has {chosen.site_limit} sites at most")
    if epsilon <= 0:
        raise typer.BadParameter("ε must be positive (use inf for no DP)")
    if chosen.governed and not math.isfinite(epsilon):
        raise typer.BadParameter("a study on personal data must run under DP: give a finite ε")
    config = StudyConfig(
        study_id=new_study_id(scenario),
        task=chosen.task,
        sites=chosen.sites(sites),
        num_server_rounds=rounds,
        min_sites=max(1, sites - 1),  # the study goes on if one site drops out
        strategy=strategy,
        target_epsilon=epsilon,
        local_epochs=local_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        study_dir=out,
    )
    console.print(f"[bold]{chosen.description}[/bold] — study {config.study_id}")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        step = progress.add_task("preparing", total=None)
        rounds_bar = progress.add_task(
            "federated rounds",
            total=rounds,
            visible=chosen.name != "usecase3",  # statistics: no rounds
        )

        def narrate(message: str) -> None:
            progress.update(step, description=message)

        def on_round(server_round: int, trained: list[str]) -> None:
            progress.update(
                rounds_bar,
                completed=server_round,
                description=f"round {server_round}: {len(trained)} site(s) trained",
            )

        try:
            report = run_scenario(
                chosen,
                config,
                people=companies if chosen.unit == "companies" else (people or chosen.default_people),
                narrate=narrate,
                on_round=on_round,
                objections=opt_outs,
            )
        except Exception as exc:  # the message names what failed; the traceback is not for the user
            from .errors import describe

            progress.stop()
            console.print(f"[red]Study failed:[/red] {describe(exc)}")
            details = _keep_traceback(out)
            if details is not None:
                console.print(f"details for a developer: {details}")
            raise typer.Exit(1) from None
        progress.update(step, description="done", total=1, completed=1)
    kept = ("grant", "audit", "quality", "bad_input")
    extra: dict[str, object] = {k: report[k] for k in kept if k in report}
    if report.get("kind") == "usecase3":
        from coordinator.analytics_report import write_query_folder

        write_query_folder(out, report)
        _query_summary(report, out)
    elif chosen.unit == "companies":
        from coordinator.company_report import amend_company_report

        report = amend_company_report(out, extra)
        _summary(report, out)
    else:
        extra["data"] = _data_notice(chosen.governed)
        report = amend_report(out, extra)
        _summary(report, out)
    audit = report.get("audit")
    if report["status"] != "completed" or (isinstance(audit, dict) and not audit["verified"]):
        raise typer.Exit(1)


def _keep_traceback(out: Path) -> Path | None:
    """The traceback goes to a file in the study folder, not to the person at the terminal."""
    import traceback

    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "error.log"
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        return None
    return path


def _data_notice(synthetic: bool) -> dict[str, object]:
    """What the report's reader must know about the records behind it (said first in report.md)."""
    if synthetic:
        return {
            "synthetic": True,
            "description": "Partenaires simulés (r2dde simulate) : identités, parcours et notes de"
            " conseillers générés, calibrés sur des données publiques réelles (communes et zones"
            " d'emploi INSEE, BMO 2024, ROME 4.0).",
        }
    return {"synthetic": False, "description": "UCI Adult (données publiques réelles, anonymes)."}


def _summary(report: dict[str, object], out: Path) -> None:
    metrics = report["metrics"]
    assert isinstance(metrics, dict)
    if "clusters" in report:
        quality = report.get("quality") or {}
        assert isinstance(quality, dict)
        console.print(
            f"Study [bold]{report['status']}[/bold] in {report['wall_seconds']:.1f} s — "
            f"{len(report['clusters'])} company types released, cost ratio {_f(quality.get('cost_ratio'))}, "  # type: ignore[arg-type]
            f"ARI {_f(quality.get('ari_local_labels_vs_true_types'))}"
        )
    else:
        console.print(
            f"Study [bold]{report['status']}[/bold] in {report['wall_seconds']:.1f} s — "
            f"accuracy {_f(metrics.get('accuracy'))}, AUC {_f(metrics.get('auc'))}"
        )
    table = Table("site", "status", "examples", "ε spent", "ε target", "δ")
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        table.add_row(
            site,
            s["status"],
            str(s["examples"]) if s.get("examples") is not None else "—",
            _f(s["epsilon"]),
            _f(s["target_epsilon"]),
            f"{s['delta'] or 0:.1e}",
        )
    console.print(table)
    audit = report.get("audit")
    if isinstance(audit, dict):
        verdict = "[green]verified[/green]" if audit["verified"] else "[red]FAILED[/red]"
        console.print(f"Audit export {out / 'audit.jsonl'}: {verdict}")
        for problem in audit["problems"]:
            console.print(f"  - {problem}")
    produced = ", ".join(p for p in ("model.pt", "types.png") if (out / p).is_file())
    console.print(f"Report: {out / 'report.md'} (and report.json{', ' + produced if produced else ''})")


def _query_summary(report: dict[str, object], out: Path) -> None:
    console.print(
        f"Study [bold]{report['status']}[/bold] in {report['wall_seconds']:.1f} s — "
        f"{report['released_values']} values released, {report['suppressed_values']} suppressed"
    )
    table = Table("site", "status", "ε spent", "δ")
    sites = report["sites"]
    assert isinstance(sites, dict)
    for site, s in sites.items():
        table.add_row(site, s["status"], _f(s["epsilon"]), f"{s['delta'] or 0:.1e}")
    console.print(table)
    audit = report.get("audit")
    if isinstance(audit, dict):
        verdict = "[green]verified[/green]" if audit["verified"] else "[red]FAILED[/red]"
        console.print(f"Audit export {out / 'audit.jsonl'}: {verdict}")
        for problem in audit["problems"]:
            console.print(f"  - {problem}")
    console.print(f"Report: {out / 'report.md'} (and report.json, plots)")


def _f(value: object) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"
