"""A partner's node comes back by itself after the SuperLink restarted (issue 12, item 4): `r2dde node
start` runs the SuperNode as a child and starts it again when it exits after having been up; a node
that never came up (an unregistered key) still exits with Flower's code, for the partner to fix."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from node_agent.deployment.keepalive import keep_running


def _fake_supernode(tmp_path: Path, behaviour: str) -> list[str]:
    """A stand-in for flower-supernode: each start appends a line; ``behaviour`` is per start."""
    script = tmp_path / "fake.py"
    script.write_text(
        "import sys, time\n"
        f"log = {str(tmp_path / 'starts')!r}\n"
        "n = sum(1 for _ in open(log)) if __import__('os').path.exists(log) else 0\n"
        "open(log, 'a').write('start\\n')\n"
        f"plan = {behaviour!r}.split(',')\n"
        "step = plan[min(n, len(plan) - 1)]\n"
        "if step == 'up-then-lost': time.sleep(2.0); sys.exit(1)\n"
        "if step == 'refused': sys.exit(1)\n"
        "if step == 'up-then-dropped': time.sleep(2.0); sys.exit(0)\n"
        "time.sleep(2.0)\n"
        "sys.exit(0)\n",
        encoding="utf-8",
    )
    return [sys.executable, str(script)]


def _starts(tmp_path: Path) -> int:
    return len((tmp_path / "starts").read_text().splitlines())


def test_a_supernode_that_was_up_is_started_again_after_losing_the_superlink(tmp_path: Path) -> None:
    said: list[str] = []
    # lost twice with an error, then "terminated gracefully" (code 0: a SuperLink without its state
    # no longer knows it), then refused at once: gives up only after that quick failure streak
    argv = _fake_supernode(tmp_path, "up-then-lost,up-then-lost,up-then-dropped,refused")
    code = keep_running(argv, dict(os.environ), say=said.append, first_delay_s=0.01, up_s=1.5)
    assert code == 1 and _starts(tmp_path) == 3 + 6
    assert sum("starting it again" in line for line in said) == 8


def test_a_supernode_refused_at_its_first_start_is_not_restarted(tmp_path: Path) -> None:
    argv = _fake_supernode(tmp_path, "refused")
    code = keep_running(argv, dict(os.environ), say=lambda _: None, first_delay_s=0.01, up_s=1.5)
    assert code == 1 and _starts(tmp_path) == 1


def test_the_loop_gives_up_after_quick_failures_in_a_row(tmp_path: Path) -> None:
    argv = _fake_supernode(tmp_path, "up-then-lost,refused")
    code = keep_running(argv, dict(os.environ), say=lambda _: None, first_delay_s=0.01, up_s=1.5)
    assert code == 1 and _starts(tmp_path) == 7  # up once, then 6 quick failures: the 6th gives up
