"""Round overhead of Flower's deployment engine against its simulation engine, same study.

Run by hand (not a test):
    .venv/bin/python benchmarks/deployment/round_overhead.py                 # Adult, 3 and 10 nodes
    .venv/bin/python benchmarks/deployment/round_overhead.py --usecase1      # + use case 1, 3 nodes

Each deployment runs twice in the same run, nodes with their warm ClientApp server (what `r2dde node
start` runs) and without it (``--no-warm-start``: a cold process per message, Flower's default).

The study is the same on both engines: the ServerApp's `run_study` (FedAvg, DP-SGD at every
site, train + evaluate each round) over the same files. Deployment = one SuperLink and one
SuperNode per site as separate processes on loopback, TLS and SuperNode authentication on,
started and stopped by `LoopbackFederation`. Simulation = `run_simulated_study` (Ray, one CPU
per virtual node). "Seconds per round" is the ServerApp's own strategy time divided by the
rounds (the same clock on both engines); startup (processes, Ray) is reported apart.
Adult (public data, no broker) isolates the engine; use case 1 adds the governed path (broker,
grant, anonymization, ε reservations). Writes benchmarks/results/deployment_round_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from process_cpu import ProcessCpu, difference  # noqa: E402  (beside this script)

from coordinator.deployment.loopback import LoopbackFederation  # noqa: E402
from coordinator.grant import request_grant  # noqa: E402
from coordinator.study_config import StudyConfig  # noqa: E402
from node_agent.cli import launcher_folder, supernode_environment  # noqa: E402
from node_agent.deployment.supernode import SuperNodeSettings  # noqa: E402
from node_agent.deployment.warm_server import FORKED, READY  # noqa: E402
from node_agent.deployment.warm_start import server_argv  # noqa: E402
from node_agent.settings import NodeSettings  # noqa: E402
from simulations.adult import site_id, write_adult_sites  # noqa: E402
from simulations.engine import run_simulated_study  # noqa: E402
from simulations.partners import generate_partners  # noqa: E402
from trust_broker.provision import provision  # noqa: E402
from trust_broker.provision.tls import write_tls_material  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "deployment_round_overhead.json"
USE_CASE_1_SITES = ("france_travail", "apec", "missions_locales")


def _keys(root: Path, sites: tuple[str, ...]) -> Path:
    provision(root / "keys", sites)
    write_tls_material(root / "keys", sites)
    return root / "keys"


def _simulate(config: StudyConfig, nodes: list[NodeSettings]) -> dict[str, object]:
    cpu = ProcessCpu().start()
    start = time.perf_counter()
    report = run_simulated_study(config, nodes)
    total = time.perf_counter() - start
    return {**_timing(report, total, config.num_server_rounds), "cpu_seconds_by_role": cpu.stop()}


def _timing(report: dict[str, object], total: float, rounds: int) -> dict[str, float]:
    strategy = float(report["wall_seconds"])  # type: ignore[arg-type]
    trained = sum(1 for s in report["sites"].values() if s["status"] == "trained")  # type: ignore[union-attr]
    return {
        "seconds_per_round": round(strategy / rounds, 2),
        "strategy_seconds": round(strategy, 2),
        "total_seconds": round(total, 2),
        "sites_trained": trained,
        "status": str(report["status"]),  # type: ignore[dict-item]
        "reason": str(report.get("reason", "")),  # type: ignore[dict-item]
    }


def _deploy(
    root: Path, config: StudyConfig, data: Path, *, governed: bool, warm: bool, purpose: str = ""
) -> dict[str, float]:
    """One deployed study; ``warm``: the nodes' ClientApp processes fork from a warm server."""
    keys = _keys(root, config.sites)
    cpu = ProcessCpu().start()
    start = time.perf_counter()
    with LoopbackFederation(root / "work", keys, data, repo=REPO) as federation:
        if governed:
            federation.start_broker()
            config = request_grant(config, purpose=purpose, broker_url=federation.broker_url, keys=keys)
        # Flower's own default, state in memory: on this 2-core machine ten cold nodes starve the
        # SuperLink, and its SQLite state then answered a reply push with "database is locked" (the
        # SuperNode does not push again) and a status read with an internal error.
        federation.start_superlink(memory_state=True)
        for site in config.sites:
            if governed:
                federation.start_node(site, warm=warm)
            else:  # public data: no broker, so `r2dde node start`'s processes, started here
                flwr_home = root / "work" / f"flwr-{site}"
                env = supernode_environment(flwr_home)  # the approved-app launcher first on PATH
                federation.approve_app(keys / "nodes" / site)
                if warm:
                    warm_server = server_argv(launcher_folder(flwr_home))
                    federation.supervisor.start(f"warm-{site}", warm_server, env=env)
                settings = SuperNodeSettings(
                    site=site,
                    data_dir=data / site,
                    keys_dir=keys / "nodes" / site,
                    broker_url=None,
                    superlink=federation.superlink,
                    runtime_port=_free_port(),
                )
                federation.supervisor.start(f"node-{site}", settings.argv(), env=env)
        with federation.control() as control:
            control.wait_online(config.sites, timeout_s=120)
            if warm:  # a node's warm server starts with the node, long before a study in real use
                _wait_for_log_lines(federation, READY, len(config.sites), timeout_s=300)
            ready = time.perf_counter() - start
            cpu.sample()
            at_ready = cpu.by_role()
            # What the federation costs while no study runs: every node's pulls, polls and heartbeats.
            time.sleep(IDLE_SECONDS)
            cpu.sample()
            before_study = cpu.by_role()
            idle = difference(before_study, at_ready)
            run_id = control.start_run(REPO, config.to_run_config())
            outcome = control.wait(run_id, timeout_s=1800)
        total = time.perf_counter() - start - IDLE_SECONDS  # as before the idle measurement
        used = cpu.stop()
        # Proof the warm path served: its servers log each forked ClientApp process.
        forked = sum(p.log_text().count(FORKED) for p in federation.supervisor.processes.values())
    if not outcome.completed:
        raise RuntimeError(f"deployment run did not complete: {outcome}")
    report = json.loads((config.study_dir / "report.json").read_text(encoding="utf-8"))
    timing = _timing(report, total, config.num_server_rounds)
    timing["startup_seconds"] = round(ready, 2)
    timing["warm_launches"] = forked
    # Where the run's CPU went, start-up excluded (the simulation row reports its whole run).
    timing["cpu_seconds_by_role"] = difference(used, before_study)  # type: ignore[assignment]
    timing["cpu_seconds_at_startup"] = at_ready  # type: ignore[assignment]
    # The federation's own processes: the benchmark process (this sampler) is left out.
    idle.pop("benchmark process", None)
    timing["idle_cores_by_role"] = {role: round(s / IDLE_SECONDS, 3) for role, s in idle.items() if s}  # type: ignore[assignment]
    timing["idle_cores"] = round(sum(idle.values()) / IDLE_SECONDS, 3)
    return timing


#: Seconds the started federation is left idle, its CPU measured, before the study.
IDLE_SECONDS = 20.0

#: Deployments each row runs; ``--warm-only`` leaves out the cold one (a quicker look, not saved).
MODES = ["warm", "cold"]


def _wait_for_log_lines(federation: LoopbackFederation, line: str, count: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    logs = federation.supervisor.processes.values()
    while sum(p.log_text().count(line) for p in logs) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} processes logged {line!r} within {timeout_s:.0f} s")
        time.sleep(0.5)


def _warm_and_cold(
    root: Path,
    base: StudyConfig,
    *,
    governed: bool,
    purpose: str = "",
    modes: list[str] = MODES,
    tag: str = "",
) -> dict[str, object]:
    """The study deployed twice: nodes with their warm server, then without (a cold process per message)."""
    runs = {}
    for name in modes:
        folder = root / f"dep-{name}{tag}"
        config = replace(base, study_id=f"{base.study_id}-{name}", study_dir=folder / "study")
        runs[name] = _deploy(
            folder, config, root / "data", governed=governed, warm=name == "warm", purpose=purpose
        )
    names = {"warm": "deployment", "cold": "deployment_cold_start"}
    return {names[mode]: run for mode, run in runs.items()}


def _free_port() -> int:
    from coordinator.deployment.processes import free_port

    return free_port()


def adult(root: Path, nodes: int, rounds: int, repeat: int = 1) -> dict[str, object]:
    sites = tuple(site_id(i) for i in range(1, nodes + 1))
    write_adult_sites(root / "data", nodes, seed=42)
    base = StudyConfig(
        study_id=f"bench-adult-{nodes}",
        task="adult_income",
        sites=sites,
        num_server_rounds=rounds,
        min_sites=nodes,
        target_epsilon=3.0,
        local_epochs=1,
        batch_size=256,
        seed=42,
    )
    simulated = [NodeSettings(site=s, data_dir=root / "data" / s) for s in sites]
    simulation = _simulate(replace(base, study_dir=root / "sim"), simulated)
    # Other study ids: the simulation's nodes kept their record of the rounds they trained (in the
    # data folders' .r2dde-node), and would refuse the same study's rounds again (node.round_repeated).
    deployments = _warm_and_cold(root, base, governed=False)
    pairs = [(simulation, deployments.get("deployment"))]
    for again in range(1, repeat):  # the two engines once more, one after the other: the machine drifts
        study = replace(base, study_id=f"{base.study_id}-{again}")
        again_simulated = _simulate(replace(study, study_dir=root / f"sim-{again}"), simulated)
        again_warm = _warm_and_cold(root, study, governed=False, modes=["warm"], tag=f"-{again}")
        pairs.append((again_simulated, again_warm["deployment"]))
    row: dict[str, object] = {
        "study": "adult_income",
        "nodes": nodes,
        "rounds": rounds,
        "simulation": simulation,
        **deployments,
    }
    if repeat > 1 and "deployment" in deployments:
        ratios = [
            {
                "simulation": sim["seconds_per_round"],
                "deployment": dep["seconds_per_round"],  # type: ignore[index]
                "ratio": round(float(dep["seconds_per_round"]) / float(sim["seconds_per_round"]), 2),  # type: ignore[index, arg-type]
            }
            for sim, dep in pairs
        ]
        row["repeats"] = ratios
        row["median_ratio"] = statistics.median(r["ratio"] for r in ratios)
    return row


def usecase1(root: Path, rounds: int, people: int) -> dict[str, object]:
    """Use case 1 on 3 partners: the simulation path of `r2dde simulate`, the deployment path of the e2e."""
    from simulations.scenarios import SCENARIOS, run_scenario

    base = StudyConfig(
        study_id="bench-uc1",
        task="employment_outcome",
        sites=USE_CASE_1_SITES,
        num_server_rounds=rounds,
        min_sites=3,
        target_epsilon=3.0,
        local_epochs=1,
        batch_size=64,
        seed=42,
        study_dir=root / "sim",
    )
    start = time.perf_counter()
    report = run_scenario(SCENARIOS["usecase1"], base, people=people, narrate=lambda _m: None)
    simulation = _timing(report, time.perf_counter() - start, rounds)
    generate_partners(root / "data", seed=42, people=people, sites=USE_CASE_1_SITES)
    deployments = _warm_and_cold(root, base, governed=True, purpose="autodiagnostic_mobilite")
    return {
        "study": "employment_outcome (use case 1)",
        "nodes": 3,
        "rounds": rounds,
        "people": people,
        "simulation": simulation,
        **deployments,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[3, 10], help="Adult runs (none: skip)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--usecase1", action="store_true", help="also time use case 1 on 3 partners")
    parser.add_argument("--people", type=int, default=1500)
    parser.add_argument(
        "--repeat", type=int, default=1, help="Adult rows: simulation and warm deployment this many times"
    )
    parser.add_argument("--warm-only", action="store_true", help="no cold deployment; print, save nothing")
    args = parser.parse_args()
    if args.warm_only:
        MODES.remove("cold")
    # Stopped from outside: unwind, so that every federation stops the processes it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    with tempfile.TemporaryDirectory(prefix="r2dde-bench-deploy-") as tmp:
        for nodes in args.nodes:
            row = adult(Path(tmp) / f"adult-{nodes}", nodes, args.rounds, args.repeat)
            row["load_average_at_end"] = os.getloadavg()  # a busy machine stretches both engines
            print(json.dumps(row), flush=True)
            rows.append(row)
        if args.usecase1:
            row = usecase1(Path(tmp) / "uc1", args.rounds, args.people)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for row in rows:
        if "median_ratio" in row:
            print(
                f"{row['study']:<34} {row['nodes']:>3} nodes: warm deployment ÷ simulation, each repeat:",
                ", ".join(str(r["ratio"]) for r in row["repeats"]),
                f"(median {row['median_ratio']})",
            )  # type: ignore[union-attr]
        sim = row["simulation"]["seconds_per_round"]  # type: ignore[index]
        for key, label in (("deployment_cold_start", "cold"), ("deployment", "warm")):
            if key not in row:
                continue
            dep = row[key]["seconds_per_round"]  # type: ignore[index]
            overhead = dep - sim
            # Issue 17's goals: ≤ 2 s per node and round, a 10-node round within 1.5× of simulation.
            figures = {
                "overhead_seconds_per_round": round(overhead, 2),
                "overhead_seconds_per_node_and_round": round(overhead / int(row["nodes"]), 2),  # type: ignore[call-overload]
                "deployment_to_simulation": round(dep / sim, 2),
            }
            row[key].update(figures)  # type: ignore[union-attr]
            print(
                f"{row['study']:<34} {row['nodes']:>3} nodes: simulation {sim:>7.1f} s/round,"
                f" deployment ({label}) {dep:>7.1f} s/round (+{overhead:.1f}),"
                f" startup {row[key]['startup_seconds']:.1f} s,"  # type: ignore[index]
                f" {figures['overhead_seconds_per_node_and_round']} s per node and round,"
                f" ratio {figures['deployment_to_simulation']}"
            )
    if args.warm_only:
        return
    kept = []  # rows of earlier runs for other (study, nodes) pairs are kept
    if RESULTS.is_file():
        fresh = {(r["study"], r["nodes"]) for r in rows}
        kept = [
            r
            for r in json.loads(RESULTS.read_text(encoding="utf-8"))["rows"]
            if (r["study"], r["nodes"]) not in fresh
        ]
    rows = kept + rows
    result = {
        "benchmark": "deployment_round_overhead",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "method": "strategy time / rounds; same run_study on both engines; train + evaluate per round",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
