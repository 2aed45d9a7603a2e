"""Runs a study on Flower's simulation engine (Ray), in this process, and leaves nothing running."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from flwr.serverapp import ServerApp

from coordinator.analytics import QueryStudy
from coordinator.analytics_study import query_server_app
from coordinator.journal import RoundListener
from coordinator.server_app import server_app_for
from coordinator.study_config import StudyConfig
from coordinator.study_folder import read_report
from node_agent.settings import MANIFEST_ENV, NodeSettings, write_manifest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")


def _server_app(config: StudyConfig | QueryStudy, on_round: RoundListener | None) -> ServerApp:
    if isinstance(config, QueryStudy):
        return query_server_app(config)
    return server_app_for(config, on_round)


def run_simulated_study(
    config: StudyConfig | QueryStudy,
    nodes: Sequence[NodeSettings],
    *,
    on_round: RoundListener | None = None,
    cpus: int | None = None,
    quiet: bool = True,
    server_app: ServerApp | None = None,
) -> dict[str, object]:
    """One virtual SuperNode per site; returns the study report (also written to `config.study_dir`).

    A `QueryStudy` runs the analytics ServerApp (query messages) instead of training rounds.
    ``server_app`` replaces the training study's ServerApp (use case 2 brings its own driver)."""
    from flwr.simulation import run_simulation

    from node_agent.client_app import app as client_app

    config.study_dir.mkdir(parents=True, exist_ok=True)
    manifest = config.study_dir / "simulation-nodes.json"
    write_manifest(manifest, list(nodes))
    previous = os.environ.get(MANIFEST_ENV)
    os.environ[MANIFEST_ENV] = str(manifest.resolve())  # inherited by the Ray workers started below
    cpus = cpus or max(1, min(len(nodes), os.cpu_count() or 1))
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    if quiet:  # keep the person's screen for the progress display and the verdicts
        flwr_logger.setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPU here; silences Ray's notice
    try:
        run_simulation(
            server_app=server_app
            or (
                query_server_app(config)
                if isinstance(config, QueryStudy)
                else server_app_for(config, on_round)
            ),
            client_app=client_app,
            num_supernodes=len(nodes),
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {
                    "num_cpus": cpus,
                    "num_gpus": 0,
                    "include_dashboard": False,
                    "log_to_driver": not quiet,
                },
            },
        )
    finally:
        flwr_logger.setLevel(level)
        _shutdown_ray()
        if previous is None:
            os.environ.pop(MANIFEST_ENV, None)
        else:
            os.environ[MANIFEST_ENV] = previous
    return read_report(config.study_dir)


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def site_nodes(data_root: Path, sites: Sequence[str], **common: object) -> list[NodeSettings]:
    return [NodeSettings(site=s, data_dir=data_root / s, **common) for s in sites]  # type: ignore[arg-type]
