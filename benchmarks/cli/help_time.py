"""Wall time of `r2dde … --help` (issue 12: about 10 s before sub-commands were loaded lazily).

Runs each help command ``--repeat`` times in a fresh interpreter with this tree on PYTHONPATH, and,
with ``--before DIR``, the same commands against another checkout of the repository (e.g. the commit
before the change, extracted with ``git archive <commit> | tar -x -C DIR``), interleaved so both see
the same machine load. Prints a table and saves ``benchmarks/results/cli_help_time.json``.

    python benchmarks/cli/help_time.py --repeat 5 --before /tmp/r2dde-before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMANDS = (
    ["--help"],
    ["node", "--help"],
    ["node", "start", "--help"],
    ["coordinator", "run-study", "--help"],
    ["broker", "serve", "--help"],
    ["audit", "--help"],
    ["anonymize", "table", "--help"],
    ["simulate", "--help"],
)


def one_run(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system): CPU time barely depends on the machine's load."""
    env = {**os.environ, "PYTHONPATH": str(tree), "FLWR_TELEMETRY_ENABLED": "0"}
    code = "import sys; from r2dde.cli import app; sys.argv = ['r2dde', *sys.argv[1:]]; app()"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, cwd=tree)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} in {tree}: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout to compare with (same commands)")
    options = parser.parse_args()
    trees = {"after": REPO, **({"before": options.before.resolve()} if options.before else {})}
    rows = []
    load_at_start = os.getloadavg()
    for args in COMMANDS:
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for _ in range(options.repeat):
            for name, tree in trees.items():
                times[name].append(one_run(tree, args))
        row: dict[str, object] = {"command": "r2dde " + " ".join(args)}
        for name, values in times.items():
            row[f"{name}_wall_median_s"] = round(statistics.median(v[0] for v in values), 3)
            row[f"{name}_wall_max_s"] = round(max(v[0] for v in values), 3)
            row[f"{name}_cpu_median_s"] = round(statistics.median(v[1] for v in values), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "what": "wall and CPU time of r2dde help commands, fresh interpreter each run, median of repeats",
        "load_average_at_start": load_at_start,
        "repeat": options.repeat,
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }
    out = REPO / "benchmarks" / "results" / "cli_help_time.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
