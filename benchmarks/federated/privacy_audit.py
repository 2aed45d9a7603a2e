"""The empirical privacy audit of `make test` with more trials: ε lower bounds next to the claimed ε.

Run by hand (not a test):  .venv/bin/python benchmarks/federated/privacy_audit.py --trials 300
For each claimed ε, the two-run membership audit of tests/node_agent/test_privacy_audit.py (a
canary at one site, a coordinator that knows everything but the node's randomness) against
  - the node as it is (randomness secret to the node), and
  - the node as it was (randomness from the instructions' seed, which the coordinator knows).
Writes benchmarks/results/privacy_audit.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import torch

from node_agent.dp_release import NodeRandomness

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "privacy_audit.json"


def _audit_module():  # type: ignore[no-untyped-def]
    """The audit as the test suite runs it (one implementation, not a copy)."""
    spec = importlib.util.spec_from_file_location(
        "privacy_audit", ROOT / "tests/node_agent/test_privacy_audit.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=300, help="trainings per world")
    parser.add_argument("--epsilons", default="1,3")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    audit = _audit_module()
    rows = []
    for text in args.epsilons.split(","):
        epsilon = float(text)
        for node, randomness in (
            ("randomness secret to the node (now)", NodeRandomness),
            (
                "seeded from the instructions (before)",
                lambda: NodeRandomness(reproducible_seed=audit.INSTRUCTIONS_SEED),
            ),
        ):
            started = time.perf_counter()
            outcomes, bound = audit.audit(randomness, args.trials, epsilon)
            rows.append(
                {
                    "node": node,
                    "claimed_epsilon": epsilon,
                    "empirical_epsilon_lower_bound": bound,
                    "attacks_true_false_positives": outcomes,
                    "trials_per_world": args.trials,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(f"ε claimed {epsilon:>4}  {node:<40} ε ≥ {bound:.2f}  {outcomes}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"parameters": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2)
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
