"""`r2dde query` as the root CLI mounts it: the Region's command with the simulation engine plugged in.

The command itself (file check, grant, deployment engine) is the coordinator's; ``--data`` runs
the study on synthetic partner folders through ``simulations.scenarios``, which production code
may not import — so the simulation side builds the command, not the other way round.
"""

from __future__ import annotations

from pathlib import Path

from coordinator.query_cli import query_command
from tasks.analytics import QuerySpec


def _simulate(spec: QuerySpec, data: Path, out: Path) -> dict[str, object]:
    from simulations.scenarios import run_query_simulation  # imported when --data is given only

    return run_query_simulation(spec, data, out)


query = query_command(_simulate)
