"""An analytics study from start to study folder, on either Flower engine (the ServerApp's work)."""

from __future__ import annotations

import time

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from tasks import formations
from tasks.analytics import QueryRequest, QuerySpec

from .analytics import SUPPRESSION_Z, Combined, Exchange, QueryStudy, ask, await_sites, combine_totals
from .analytics_report import write_query_folder


def run_query_study(
    grid: Grid, study: QueryStudy, node_sites: dict[int, str] | None = None
) -> dict[str, object]:
    started = time.monotonic()
    await_sites(grid, len(study.sites))

    def send(request: QueryRequest) -> Exchange:
        return ask(grid, study, request, task=formations.TASK, node_sites=node_sites)

    model = None
    if study.kind == "usecase3":
        from .value_added import run_usecase3

        rows, exchanges, model = run_usecase3(send, study)
    else:
        spec = QuerySpec.from_json(study.query)
        # `repeat` (benchmarks only) asks the same table again, each time with 1/repeat of the ε,
        # to time a query on nodes that are already up; the table comes from the last one.
        repeat = int(study.extra.get("repeat", 1))  # type: ignore[call-overload]
        exchanges = {
            f"table-{r + 1}": send(QueryRequest(f"table-{r + 1}", spec, 1.0 / repeat)) for r in range(repeat)
        }
        exchange = exchanges[f"table-{repeat}"]
        rows = (
            combine_totals(spec, Combined.of(exchange.answers.values()), study.min_cell_size)
            if exchange.answers
            else []
        )
    report = _report(study, rows, exchanges, time.monotonic() - started)
    if model is not None:
        report["expected_model"] = model.model_dump()
    write_query_folder(study.study_dir, report)
    return report


def _report(
    study: QueryStudy, rows: list[dict[str, object]], exchanges: dict[str, Exchange], seconds: float
) -> dict[str, object]:
    sites: dict[str, dict[str, object]] = {}
    for site in study.sites:
        last = None
        declined = None
        for exchange in exchanges.values():
            if site in exchange.answers:
                last = exchange.answers[site]
            elif site in exchange.declined:
                declined = exchange.declined[site]
        if last is not None:
            sites[site] = {
                "status": "answered" if declined is None else "partly answered",
                "epsilon": last.epsilon,
                "delta": last.delta,
                "releases": {
                    name: {
                        "noise_multiplier": e.answers[site].noise_multiplier,
                        "mechanisms": e.answers[site].mechanisms,
                    }
                    for name, e in exchanges.items()
                    if site in e.answers
                },
                "declined": declined,
            }
        else:
            sites[site] = {
                "status": "declined",
                "epsilon": 0.0,
                "delta": None,
                "releases": {},
                "declined": declined or "no answer",
            }
    answered = [s for s, info in sites.items() if info["status"] != "declined"]
    released = [r for r in rows if not r["suppressed"]]
    return {
        "study_id": study.study_id,
        "kind": study.kind,
        "status": "completed" if answered else "failed",
        "query": study.query or None,
        "sites": sites,
        "epsilon_target": study.epsilon,
        "min_cell_size": study.min_cell_size,
        "suppression": (
            f"a cell is published when its noisy count minus {SUPPRESSION_Z:.2f} noise std reaches the "
            "minimum cell size"
        ),
        "interval_level": 0.95,
        "cells": rows,
        "released_values": len(released),
        "suppressed_values": len(rows) - len(released),
        "wall_seconds": seconds,
        "release_seconds": {name: e.seconds for name, e in exchanges.items()},
    }


def query_server_app(study: QueryStudy, node_sites: dict[int, str] | None = None) -> ServerApp:
    """A ServerApp bound to one analytics study (the simulation engine gives no run config)."""
    bound = ServerApp()

    @bound.main()
    def _main(grid: Grid, context: Context) -> None:
        run_query_study(grid, study, node_sites)

    return bound
