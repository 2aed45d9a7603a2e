"""Use case 1 at region scale on the simulation engine: time per round and peak memory by site count.

Run by hand (not a test), on an otherwise quiet machine:
    .venv/bin/python benchmarks/federated/region_scale.py                     # 3, 10, 30, 100 sites
    .venv/bin/python benchmarks/federated/region_scale.py --sites 3 10 --rounds 2
    .venv/bin/python benchmarks/federated/region_scale.py --large-rounds 2   # 100 sites: 2 rounds

Each point is the whole governed study (`simulations.scenarios.run_scenario`, as `r2dde simulate`):
keys, embedded broker with the generated site policies, grant, opt-outs, every node's reserve and
commit per round and for its one evaluation, audit export verified. The sites are the region's
first N (`simulations.region.region_sites`, the same layout at every N, also at 3), each with
``--people-per-site`` people on average (shared by the sites' declared sizes, never under
``MIN_SITE_PEOPLE``). Ray gets the machine's cores, one CPU per node actor (as `r2dde simulate`).

Each study runs in a child process; the parent samples the RSS of the child's whole process tree
(driver, broker thread, raylet, GCS, Ray workers) every 0.2 s from /proc and keeps the peak.
Seconds per round come from the coordinator's round listener: round 1 includes starting the Ray
workers (imports, first table preparation); the steady rounds are 2..R. CPU seconds per round (the
tree's user + system time, reaped children included) are measured too: on a machine shared with
other work the wall time is inflated, the CPU time much less. A least-squares line against sites
gives the cost per site (steady rounds, and round 1, the one a 1-round point also has). Writes
``benchmarks/results/simulation_region_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "simulation_region_scale.json"
SAMPLE_SECONDS = 0.2


def _child(sites: int, rounds: int, people_per_site: int, out: Path, timings: Path) -> None:
    """One governed study; writes the round clock and the report's verdicts to ``timings``."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from coordinator.study_config import StudyConfig
    from simulations import region
    from simulations.scenarios import SCENARIOS, run_scenario

    scenario = SCENARIOS["usecase1"]
    clock: dict[str, float] = {"start": time.perf_counter()}
    cpu: dict[str, float] = {}

    def narrate(message: str) -> None:
        if message.startswith("running the federated study"):
            clock["federation"] = time.perf_counter()
            cpu["federation"] = _tree_cpu_seconds(os.getpid())

    def on_round(server_round: int, trained: list[str]) -> None:
        clock[f"round_{server_round}"] = time.perf_counter()
        cpu[f"round_{server_round}"] = _tree_cpu_seconds(os.getpid())

    config = StudyConfig(
        study_id=f"region-scale-{sites}",
        task=scenario.task,
        sites=region.region_sites(sites),
        num_server_rounds=rounds,
        min_sites=max(1, sites - 1),
        target_epsilon=3.0,
        local_epochs=1,
        batch_size=64,
        seed=42,
        study_dir=out,
    )
    report = run_scenario(
        scenario, config, people=people_per_site * sites, narrate=narrate, on_round=on_round, objections=20
    )
    clock["end"] = time.perf_counter()
    marks = [cpu["federation"]] + [cpu[f"round_{r}"] for r in range(1, rounds + 1)]
    cpu_rounds = [round(b - a, 2) for a, b in zip(marks, marks[1:], strict=False)]
    site_reports = report["sites"]
    assert isinstance(site_reports, dict)
    audit = report.get("audit")
    timings.write_text(
        json.dumps(
            {
                "clock": clock,
                "cpu_seconds_per_round": cpu_rounds,
                "steady_cpu_seconds_per_round": round(float(np.mean(cpu_rounds[1:] or cpu_rounds)), 2),
                "status": report["status"],
                "audit_verified": isinstance(audit, dict) and audit.get("verified"),
                "sites_trained": sum(1 for s in site_reports.values() if s["status"] == "trained"),
                "ledger": _ledger_counts(out / "audit.jsonl"),
            }
        )
    )


def _ledger_counts(audit: Path) -> dict[str, int]:
    """Reservations and commits the broker recorded, and how many sites have both."""
    reserved: dict[str, int] = {}
    committed: dict[str, int] = {}
    for line in audit.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        kind = event.get("kind")
        if kind in ("budget.reserved", "budget.committed"):
            site = event["payload"]["account"]["site"]
            counts = reserved if kind == "budget.reserved" else committed
            counts[site] = counts.get(site, 0) + 1
    return {
        "reservations": sum(reserved.values()),
        "commits": sum(committed.values()),
        "sites_reserved_and_committed": sum(1 for s in reserved if committed.get(s) == reserved[s]),
    }


def _process_tree(root: int) -> dict[int, list[str]]:
    """``root`` and all its descendants, each with its /proc/<pid>/stat fields (one pass over /proc)."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            stats[int(entry)] = text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, fields in stats.items() if int(fields[1]) == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return {p: stats[p] for p in tree if p in stats}


def _tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants (stat field 24, in pages)."""
    return sum(int(f[21]) for f in _process_tree(root).values()) * os.sysconf("SC_PAGE_SIZE")


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds of the tree, reaped children included (stat fields 14-17): unlike wall time, not
    inflated by other programs sharing the cores."""
    ticks = sum(sum(int(x) for x in f[11:15]) for f in _process_tree(root).values())
    return ticks / os.sysconf("SC_CLK_TCK")


def _measure(sites: int, rounds: int, people_per_site: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="r2dde-region-") as tmp:
        timings = Path(tmp) / "timings.json"
        argv = [sys.executable, __file__, "--child", str(sites), "--rounds", str(rounds)]
        argv += ["--people-per-site", str(people_per_site), "--out", str(Path(tmp) / "run")]
        argv += ["--timings", str(timings)]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(SAMPLE_SECONDS)
        total = time.perf_counter() - start
        errors = child.stderr.read() if child.stderr else ""
        if child.returncode != 0 or not timings.is_file():
            raise RuntimeError(f"{sites} sites: the study failed ({child.returncode}): {errors[-2000:]}")
        result = json.loads(timings.read_text())
    clock = result.pop("clock")
    marks = [clock["federation"]] + [clock[f"round_{r}"] for r in range(1, rounds + 1)]
    per_round = [round(b - a, 2) for a, b in zip(marks, marks[1:], strict=False)]
    steady = per_round[1:] or per_round
    return {
        "sites": sites,
        "rounds": rounds,
        "people": people_per_site * sites,
        "seconds_per_round": per_round,
        "steady_seconds_per_round": round(float(np.mean(steady)), 2),
        "data_keys_broker_seconds": round(clock["federation"] - clock["start"], 2),
        "final_evaluation_and_audit_seconds": round(clock["end"] - marks[-1], 2),
        "total_seconds": round(total, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "load_average_1min_at_start": round(load, 2),
        **result,
    }


def _fit(points: list[dict[str, object]], key: str) -> dict[str, float]:
    x = np.array([float(p["sites"]) for p in points])  # type: ignore[arg-type]
    y = np.array([float(p[key]) for p in points])  # type: ignore[arg-type]
    slope, intercept = np.polyfit(x, y, 1)
    predicted = slope * x + intercept
    r2 = 1 - float(np.sum((y - predicted) ** 2)) / float(np.sum((y - y.mean()) ** 2) or 1.0)
    return {
        "slope_per_site": round(float(slope), 3),
        "intercept": round(float(intercept), 2),
        "r2": round(r2, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[3, 10, 30, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--large-sites", type=int, default=100, help="from this many sites on, --large-rounds"
    )
    parser.add_argument("--large-rounds", type=int, default=3)
    parser.add_argument("--people-per-site", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--timings", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--add", action="store_true", help="keep the points already in --results")
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.rounds, args.people_per_site, args.out, args.timings)
        return
    points: list[dict[str, object]] = []
    if args.add and args.results.is_file():
        points = [p for p in json.loads(args.results.read_text())["points"] if p["sites"] not in args.sites]
    for sites in args.sites:
        rounds = args.large_rounds if sites >= args.large_sites else args.rounds
        point = _measure(sites, rounds, args.people_per_site)
        print(json.dumps(point), flush=True)
        points.append(point)
        _save(args.results, args.people_per_site, points)  # a long run keeps what it measured
    print(json.dumps(_save(args.results, args.people_per_site, points)["linear_fits"], indent=2))


def _save(path: Path, people_per_site: int, points: list[dict[str, object]]) -> dict[str, object]:
    for point in points:  # round 1 (with the workers' start) is the one every point has, whatever its rounds
        point["first_round_seconds"] = point["seconds_per_round"][0]  # type: ignore[index]
        point["first_round_cpu_seconds"] = point["cpu_seconds_per_round"][0]  # type: ignore[index]
    fits = {}
    if len(points) >= 2:
        keys = (
            "steady_seconds_per_round",
            "steady_cpu_seconds_per_round",
            "first_round_seconds",
            "first_round_cpu_seconds",
            "peak_rss_mb",
            "total_seconds",
        )
        fits = {k: _fit(points, k) for k in keys if all(k in p for p in points)}
    results: dict[str, object] = {
        "benchmark": "simulation.region_scale",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "engine": "Flower simulation (Ray), one CPU per node actor",
        "study": "use case 1, governed (broker, grant, opt-outs, DP-SGD, one evaluation), ε = 3 per site",
        "people_per_site": people_per_site,
        "points": sorted(points, key=lambda p: int(p["sites"])),  # type: ignore[call-overload]
        "linear_fits": fits,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
