"""What happens to the partners' nodes when the Region's SuperLink restarts (issue 12, item 4).

Starts a broker, a SuperLink (`r2dde coordinator start`, state on disk by default) and two nodes
(`r2dde node start`, which keeps its SuperNode running), waits until both nodes are online, stops the
SuperLink, starts it again on the same port, and measures how long until both nodes are online again —
nobody touches the nodes. ``--memory-state`` runs the same with the SuperLink's state in memory.
Saves ``benchmarks/results/deployment_superlink_restart.json``.

    python benchmarks/deployment/superlink_restart.py [--memory-state]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SITES = ("france_travail", "apec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-state", action="store_true")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--settle", type=float, default=90.0, help="seconds before checking the nodes")
    options = parser.parse_args()
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

    from coordinator.deployment.loopback import LoopbackFederation
    from simulations.partners import generate_partners
    from trust_broker.provision import provision
    from trust_broker.provision.tls import write_tls_material

    with tempfile.TemporaryDirectory(prefix="r2dde-restart-") as tmp:
        root = Path(tmp)
        provision(root / "keys", SITES)
        write_tls_material(root / "keys", SITES)
        generate_partners(root / "data", seed=3, people=400, sites=SITES)
        fed = LoopbackFederation(root / "work", root / "keys", root / "data", repo=REPO)
        result: dict[str, object] = {"memory_state": options.memory_state, "sites": list(SITES)}
        try:
            fed.start_broker()
            fed.start_superlink(memory_state=options.memory_state)
            port = fed.superlink_port
            nodes = {site: fed.start_node(site) for site in SITES}
            with fed.control() as control:
                control.wait_online(SITES, timeout_s=options.timeout)
            fed.supervisor["superlink"].stop()
            stopped = time.monotonic()
            time.sleep(5.0)
            fed.start_superlink(port=port, memory_state=options.memory_state)
            restarted = time.monotonic()
            # A SuperLink restarted from its database first shows the nodes it knew as online; past two
            # heartbeat windows (~60 s in Flower 1.42) only nodes that really reconnected still are.
            time.sleep(options.settle)
            try:
                with fed.control() as control:
                    control.wait_online(SITES, timeout_s=options.timeout)
                    result["statuses_after_settle"] = control.node_statuses()
                result["nodes_online_again_s"] = round(time.monotonic() - restarted, 1)
                result["checked_after_s"] = options.settle
                result["outage_s"] = round(restarted - stopped, 1)
                result["verdict"] = "both nodes back online without any action at the partners"
            except Exception as exc:  # noqa: BLE001 - the measurement is the outcome
                result["verdict"] = f"nodes not back within {options.timeout:.0f} s: {exc}"
            result["node_processes_alive"] = {site: process.alive() for site, process in nodes.items()}
            result["node_log_tail"] = {
                site: [line for line in process.log_text().splitlines() if "SuperNode" in line][-4:]
                for site, process in nodes.items()
            }
            result["superlink_log_tail"] = fed.supervisor["superlink"].log_text().splitlines()[-6:]
        finally:
            fed.close()
    print(json.dumps(result, indent=2))
    name = "deployment_superlink_restart" + ("_memory" if options.memory_state else "") + ".json"
    (REPO / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
