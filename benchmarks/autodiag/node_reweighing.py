"""Reweighing at the nodes under DP-SGD: fairness gaps and AUC with and without, on the demo partners.

Each demo partner trains with the node's own DP-SGD (``node_agent.training.train_round``, its plan
from ``node_agent.dp_plan.plan_study`` at the demo's ε = 3, δ ≤ 1/(10 n), batch 256, 2 local
epochs, 3 rounds, Adam 0.01) on its own training split; the rounds are averaged as the coordinator
does (FedAvg weighted by 1/q). With reweighing on, each node computes Kamiran–Calders weights over
sex × age band on its own training split and draws record i with probability q·w_i (max w = 1).
Scored on the nodes' holdouts pooled, with the gaps the release gate reads (0.5 threshold). DP
noise makes one run noisy: several seeds of the node's randomness (reproducible seeds, the same for
both settings, so the comparison is paired; a real node draws secret ones), mean and range reported.

Run by hand after `make demo`:
    PYTHONPATH=. .venv/bin/python benchmarks/autodiag/node_reweighing.py --study runs/demo --seeds 3
Writes benchmarks/results/autodiag_node_reweighing.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fairness_mitigation import SITES, demo_partners, row  # noqa: E402

from node_agent.dp_plan import plan_study, site_delta  # noqa: E402
from node_agent.dp_release import NodeRandomness  # noqa: E402
from node_agent.reweighing import kamiran_calders_weights  # noqa: E402
from node_agent.training import predict, train_round  # noqa: E402
from tasks.models import mlp  # noqa: E402
from tasks.registry import get_task  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "autodiag_node_reweighing.json"
EPSILON, ROUNDS, EPOCHS, BATCH, LR = 3.0, 3, 2, 256, 0.01


def federated(sites: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], width: int, seed: int):  # type: ignore[no-untyped-def]
    spec = get_task("employment_outcome")
    global_model = mlp(width, spec.hidden, seed=seed)
    plans = [
        plan_study(
            n_train=len(y),
            batch_size=BATCH,
            local_epochs=EPOCHS,
            rounds=ROUNDS,
            target_epsilon=EPSILON,
            delta=site_delta(1e-5, len(y)),
            max_grad_norm=1.0,
        )
        for _, y, _ in sites
    ]
    for server_round in range(ROUNDS):
        states, weights = [], []
        for (x, y, w), plan in zip(sites, plans, strict=True):
            local = mlp(width, spec.hidden)
            local.load_state_dict(global_model.state_dict())
            randomness = NodeRandomness(reproducible_seed=seed * 100 + server_round)
            train_round(local, x, y, plan, learning_rate=LR, randomness=randomness, inclusion_weights=w)
            states.append(local.state_dict())
            weights.append(float(plan.steps_per_epoch))
        total = sum(weights)
        global_model.load_state_dict(
            {k: sum(s[k] * (wt / total) for s, wt in zip(states, weights, strict=True)) for k in states[0]}
        )
    return global_model, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    demo = demo_partners(args.study)
    encoder = get_task("employment_outcome").encoder_for(demo.fields)
    trains = [v.iloc[tr] for v, (tr, _) in zip(demo.views, demo.splits, strict=True)]
    test = pd.concat([v.iloc[te] for v, (_, te) in zip(demo.views, demo.splits, strict=True)])
    x_test, y_test, groups_test = encoder.encode(test), encoder.labels(test), encoder.groups(test)
    runs: dict[str, list[dict[str, object]]] = {"off": [], "on": []}
    for setting in ("off", "on"):
        sites = [
            (
                encoder.encode(t),
                encoder.labels(t),
                kamiran_calders_weights(encoder.labels(t), encoder.groups(t)) if setting == "on" else None,
            )
            for t in trains
        ]
        for seed in range(args.seeds):
            started = time.monotonic()
            model, plans = federated(sites, x_test.shape[1], seed)
            result = row(
                f"reweighing {setting}, seed {seed}", y_test, predict(model, x_test), groups_test, started
            )
            result["sample_rates"] = [p.sample_rate for p in plans]
            result["noise_multipliers"] = [p.noise_multiplier for p in plans]
            runs[setting].append(result)
            print(json.dumps(result))
    summary = {}
    for setting, rows in runs.items():

        def stat(get, rows=rows):  # type: ignore[no-untyped-def]
            values = [get(r) for r in rows]
            return {"mean": round(float(np.mean(values)), 4), "min": min(values), "max": max(values)}

        summary[setting] = {
            "auc": stat(lambda r: r["auc"]),
            **{
                f"{a}_{k}": stat(lambda r, a=a, k=k: r["gaps"][a][k])
                for a in ("sex", "age_band")
                for k in ("demographic_parity_gap", "equal_opportunity_gap")
            },
        }
    same_plans = runs["off"][0]["noise_multipliers"] == runs["on"][0]["noise_multipliers"]
    out = {
        "study": str(args.study),
        "sites": list(SITES),
        "epsilon": EPSILON,
        "seeds": args.seeds,
        "same_plans_and_epsilon": same_plans,
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
