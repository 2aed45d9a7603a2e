"""What federated DP-SGD needs on UCI Adult: a quick in-process sweep at one ε, scored on a tuning split.

Run by hand (not a test):  .venv/bin/python benchmarks/federated/adult_tuning.py --epsilon 1
The sites, split and accounting of adult_federated.py, but FedAvg (sites weighed by their released
size, as the nodes' 1/q does, optional server momentum as in FedAvgM) run in this process instead
of Flower's simulation engine, so a configuration takes seconds. Each site trains on a random 80 %
(the nodes' holdout share); the other 20 % of every site, pooled, is the *tuning split* every
configuration is scored on. The official `adult.test`, which adult_federated.py reports, is never
read here: settings are chosen on the tuning split only. Writes benchmarks/results/adult_tuning.json.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from node_agent.dp_plan import DpPlan, site_delta
from node_agent.dp_release import NodeRandomness, evaluation_release
from node_agent.site_size import SIZE_NOISE, ReleasedSize
from node_agent.site_study import _training_plan
from node_agent.sources import load_file
from node_agent.training import predict, train_round
from policies.models import EvaluationBudget
from simulations.adult import write_adult_sites
from tasks.metrics import binary_metrics
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import validate_adult

RESULTS = Path(__file__).resolve().parents[1] / "results" / "adult_tuning.json"

#: (rounds, local epochs, batch, node lr, clip norm C, server momentum, sites weighed by size)
SWEEP = [
    (8, 4, 2048, 0.03, 1.0, 0.0, True),  # the benchmark's settings before this sweep
    (8, 4, 4096, 0.03, 1.0, 0.0, True),  # larger expected batch: fewer, noisier steps
    (8, 4, 4096, 0.05, 1.0, 0.0, True),
    (8, 4, 2048, 0.05, 1.0, 0.0, True),
    (8, 4, 2048, 0.03, 0.5, 0.0, True),  # clip norm
    (8, 4, 2048, 0.03, 2.0, 0.0, True),
    (8, 8, 4096, 0.03, 1.0, 0.0, True),
    (12, 4, 4096, 0.03, 1.0, 0.0, True),
    (5, 8, 4096, 0.03, 1.0, 0.0, True),
    (8, 4, 2048, 0.03, 1.0, 0.0, False),  # every site weighs the same
]


def node_plan(
    n: int, epsilon: float, rounds: int, epochs: int, batch: int, clip: float, delta: float
) -> DpPlan:
    """The plan a broker-less node makes (node_agent.site_study): on a noisy release of its size,
    with the default evaluation's share of ε set aside and the size release composed in."""
    size = ReleasedSize(n + float(np.random.default_rng().normal(0.0, SIZE_NOISE)), SIZE_NOISE)
    if not math.isfinite(epsilon):
        size = ReleasedSize(float(n), 0.0)
    budget = EvaluationBudget()
    site_delta_ = site_delta(delta, size.upper)
    instructions = SimpleNamespace(
        batch_size=min(batch, n), local_epochs=epochs, num_rounds=rounds, max_grad_norm=clip
    )
    terms = SimpleNamespace(target_epsilon=epsilon, evaluation=budget)
    evaluation = evaluation_release(budget, epsilon, site_delta_, 1.0)
    return _training_plan(instructions, terms, size, site_delta_, evaluation)  # type: ignore[arg-type]


def federated(sites, x_tune, y_tune, epsilon, rounds, epochs, batch, lr, clip, momentum, by_records, args):  # type: ignore[no-untyped-def]
    spec = get_task("adult_income")
    model = mlp(x_tune.shape[1], spec.hidden, seed=args.seed)
    plans = {
        s: node_plan(len(y), epsilon, rounds, epochs, batch, clip, args.delta) for s, (_, y) in sites.items()
    }
    velocity = None
    for _ in range(rounds):
        start = {k: v.clone() for k, v in model.state_dict().items()}
        total = {k: torch.zeros_like(v) for k, v in start.items()}
        for site, (x, y) in sites.items():
            local = mlp(x.shape[1], spec.hidden)
            local.load_state_dict(start)
            train_round(
                local,
                x,
                y,
                plans[site],
                learning_rate=lr,
                randomness=NodeRandomness(),
            )
            for k, v in local.state_dict().items():
                total[k] += v * (len(y) if by_records else 1)
        n = sum(len(y) for _, y in sites.values()) if by_records else len(sites)
        step = {k: total[k] / n - start[k] for k in start}
        velocity = step if velocity is None else {k: momentum * velocity[k] + step[k] for k in step}
        model.load_state_dict({k: start[k] + velocity[k] for k in start})
    m = binary_metrics(y_tune, predict(model, x_tune))
    return {"accuracy": m["accuracy"], "auc": m["auc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (the nodes' noise differs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = get_task("adult_income").encoder()
    paths = write_adult_sites(Path(tempfile.mkdtemp(prefix="r2dde-tune-")), 4, args.seed, alpha=0.5)
    rng = np.random.default_rng(0)
    sites, tuning_x, tuning_y = {}, [], []
    for site, path in paths.items():
        frame = load_file(path, site, validate_adult)
        keep = rng.random(len(frame)) < 0.8
        x, y = encoder.encode(frame), encoder.labels(frame)
        sites[site] = (x[keep], y[keep])
        tuning_x.append(x[~keep])
        tuning_y.append(y[~keep])
    x_tune, y_tune = np.vstack(tuning_x), np.concatenate(tuning_y)
    rows = []
    for rounds, epochs, batch, lr, clip, momentum, by_records in SWEEP:
        started = time.perf_counter()
        scores = [
            federated(
                sites,
                x_tune,
                y_tune,
                args.epsilon,
                rounds,
                epochs,
                batch,
                lr,
                clip,
                momentum,
                by_records,
                args,
            )
            for _ in range(args.repeats)
        ]
        accuracy = [sc["accuracy"] for sc in scores]
        row = {
            "rounds": rounds,
            "local_epochs": epochs,
            "batch_size": batch,
            "learning_rate": lr,
            "max_grad_norm": clip,
            "server_momentum": momentum,
            "sites_weighed_by_records": by_records,
            "accuracy_mean": float(np.mean(accuracy)),
            "accuracy_std": float(np.std(accuracy, ddof=1)) if len(accuracy) > 1 else 0.0,
            "auc_mean": float(np.mean([sc["auc"] for sc in scores])),
            "runs": scores,
            "seconds": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "parameters": vars(args) | {"out": str(args.out)},
                "scored_on": f"20 % of each site's rows, {len(y_tune)} records (never adult.test)",
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
