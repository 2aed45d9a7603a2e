"""Plain logs when not on a terminal (issue 12, item 8): Flower's console handler colours every line,
which filled the SuperLink's and SuperNodes' log files with escape codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOG_A_LINE = "from flwr.common.logger import log; import logging; log(logging.WARNING, 'round 1 done')"


def _stderr(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLWR_TELEMETRY_ENABLED": "0"}
    env.pop("NO_COLOR", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return done.stderr


def test_our_flower_processes_log_plain_text_into_a_pipe() -> None:
    assert "\x1b[" in _stderr(LOG_A_LINE)  # Flower alone: colour codes into the pipe
    ours = _stderr(f"import tasks.flower_logs as f; f.plain_unless_terminal(); {LOG_A_LINE}")
    assert "round 1 done" in ours and "\x1b[" not in ours


def test_the_superlink_and_supernode_commands_run_flower_through_the_plain_log_wrapper() -> None:
    from tasks.flower_logs import wrapped

    assert wrapped(["flower-superlink", "--insecure"])[1:3] == ["-m", "tasks.flower_logs"]
