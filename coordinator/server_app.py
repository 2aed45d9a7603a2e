"""The Flower ServerApp the Region runs: one granted study, start to report."""

from __future__ import annotations

import logging
import os
import time

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from autodiag import release
from contracts.instructions import RecordError
from contracts.records import instructions_record, load_model, model_arrays
from tasks.flower_logs import plain_unless_terminal
from tasks.models import mlp
from tasks.registry import get_task

from .explanations import what_if
from .journal import ProgressFile, RoundListener, StudyJournal
from .prompt_grid import PromptGrid
from .report import build_report, write_study_folder
from .strategies import JournaledStrategy, StudyAborted, build_strategy
from .study_config import StudyConfig, StudyConfigError
from .study_folder import section

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
plain_unless_terminal()  # Flower colours every line, also into log files
log = logging.getLogger(__name__)

#: How long round 1 waits for every listed site to connect before going on with those present.
ASSEMBLY_GRACE_S = 30.0

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    grid = PromptGrid(grid)  # replies collected as they come, not every 3 s (deployment engine)
    if context.run_config.get("analytics"):  # a statistics study: query messages, no training
        from .analytics import QueryStudy
        from .analytics_study import run_query_study

        study = QueryStudy.from_run_config(context.run_config)
        node_sites = study.extra.get("node_sites")
        run_query_study(grid, study, {int(k): str(v) for k, v in section(node_sites).items()})
        return
    config = StudyConfig.from_run_config(context.run_config)
    run_study(grid, config, ProgressFile(config.study_dir, config.num_server_rounds))  # run-study shows it


def run_study(grid: Grid, config: StudyConfig, on_round: RoundListener | None = None) -> dict[str, object]:
    """Run every round, then write the study folder — also when the study stops early."""
    spec = get_task(config.task)
    if spec.personal_identifiers and not config.grant:
        raise StudyConfigError(
            f"task {config.task} uses personal data: the study needs a grant from the trust broker "
            "(r2dde coordinator run-study asks for one)"
        )
    encoder = spec.encoder_for(config.fields)
    model = mlp(encoder.width, spec.hidden, seed=config.seed)
    journal = StudyJournal(config.sites, on_round, config.node_site_map)
    strategy = JournaledStrategy(
        build_strategy(
            config.strategy,
            fraction_train=config.fraction_train,
            min_sites=config.min_sites,
            available=config.min_sites,
        ),
        journal,
        config.min_sites,
        evaluated_rounds=range(
            config.num_server_rounds - config.evaluations + 1, config.num_server_rounds + 1
        ),
    )
    instructions = instructions_record(config.instructions())
    started = time.monotonic()
    _await_sites(grid, len(config.sites))
    status, reason, final = "completed", "", None
    try:
        result = strategy.start(
            grid=grid,
            initial_arrays=model_arrays(model),
            num_rounds=config.num_server_rounds,
            timeout=config.round_timeout,
            train_config=instructions,
            evaluate_config=instructions,
        )
        final = result.arrays
        round_metrics = {r: journal.pooled_quality(r) for r in result.evaluate_metrics_clientapp}
    except StudyAborted as exc:
        status, reason, round_metrics = "aborted", str(exc), {}
        log.error("study %s stopped: %s", config.study_id, exc)
    if final is not None:
        try:
            load_model(model, final, "the aggregated model")
        except RecordError as exc:  # e.g. a site's update that was not finite: no model to publish
            status, reason, final = "aborted", str(exc), None
            log.error("study %s stopped: %s", config.study_id, exc)
    explanations: dict[str, object] = {}
    if final is not None and spec.what_if is not None:
        explanations = what_if(model, encoder, spec.what_if)
    report = build_report(
        config,
        journal,
        status=status,
        reason=reason,
        rounds_completed=max(journal.rounds, default=0) if status == "aborted" else config.num_server_rounds,
        round_metrics={int(r): m for r, m in round_metrics.items()},
        wall_seconds=time.monotonic() - started,
        feature_names=encoder.feature_names,
        explanations=explanations,
    )
    scores = journal.pooled_score_histogram()
    # autodiag: calibration counts + fairness gate
    report["release"] = release.study_section(report, {0: {"pooled": scores}} if scores else {})
    write_study_folder(config.study_dir, report, model if final is not None else None)
    return report


def _await_sites(grid: Grid, expected: int, grace_s: float = ASSEMBLY_GRACE_S) -> None:
    """Let every listed site connect before round 1 samples (Flower samples whoever is there: on
    the simulation engine the ServerApp can start before all virtual nodes are registered)."""
    deadline = time.monotonic() + grace_s
    while len(list(grid.get_node_ids())) < expected and time.monotonic() < deadline:
        time.sleep(0.2)


def server_app_for(config: StudyConfig, on_round: RoundListener | None = None) -> ServerApp:
    """A ServerApp bound to one study (the simulation engine gives ServerApps no run config)."""
    bound = ServerApp()

    @bound.main()
    def _main(grid: Grid, context: Context) -> None:
        run_study(grid, config, on_round)

    return bound
