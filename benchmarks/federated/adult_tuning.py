"""What federated DP-SGD needs on UCI Adult: a quick in-process sweep at one ε.

Run by hand (not a test):  .venv/bin/python benchmarks/federated/adult_tuning.py --epsilon 1
The sites, split and accounting of adult_federated.py, but FedAvg (weighted by records, optional
server momentum as in FedAvgM) run in this process instead of Flower's simulation engine, so a
configuration takes seconds. Each site trains on a random 80 % (the nodes' holdout share); all
are scored on the official `adult.test`. Writes benchmarks/results/adult_tuning.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from node_agent.dp_plan import plan_study, site_delta
from node_agent.dp_release import NodeRandomness
from node_agent.sources import load_file
from node_agent.training import predict, train_round
from simulations.adult import load_adult_test, write_adult_sites
from tasks.metrics import binary_metrics
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import validate_adult

RESULTS = Path(__file__).resolve().parents[1] / "results" / "adult_tuning.json"

#: (rounds, local epochs, batch, node lr, node optimizer, server momentum, sites weighed by records)
SWEEP = [
    (5, 2, 2048, 0.03, "adam", 0.0, True),  # the settings of the README before issue 10
    (5, 2, 2048, 0.03, "adam", 0.9, True),  # server momentum (FedAvgM)
    (5, 2, 2048, 0.5, "sgd", 0.0, True),
    (5, 2, 2048, 2.0, "sgd", 0.0, True),
    (10, 2, 1024, 0.01, "adam", 0.0, True),
    (5, 5, 2048, 0.03, "adam", 0.0, True),  # the benchmark's settings now
    (8, 4, 2048, 0.03, "adam", 0.0, True),
    (5, 10, 2048, 0.03, "adam", 0.0, True),
    (5, 5, 4096, 0.03, "adam", 0.0, True),
    (5, 5, 2048, 0.03, "adam", 0.0, False),  # every site weighs the same (no record count used)
]


def federated(
    sites, x_test, y_test, epsilon, rounds, epochs, batch, lr, optimizer, momentum, by_records, args
):  # type: ignore[no-untyped-def]
    spec = get_task("adult_income")
    model = mlp(x_test.shape[1], spec.hidden, seed=args.seed)
    plans = {
        s: plan_study(
            n_train=len(y),
            batch_size=min(batch, len(y)),
            local_epochs=epochs,
            rounds=rounds,
            target_epsilon=epsilon,
            delta=site_delta(args.delta, len(y)),
            max_grad_norm=args.max_grad_norm,
        )
        for s, (_, y) in sites.items()
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
                optimizer_name=optimizer,
            )
            for k, v in local.state_dict().items():
                total[k] += v * (len(y) if by_records else 1)
        n = sum(len(y) for _, y in sites.values()) if by_records else len(sites)
        step = {k: total[k] / n - start[k] for k in start}
        velocity = step if velocity is None else {k: momentum * velocity[k] + step[k] for k in step}
        model.load_state_dict({k: start[k] + velocity[k] for k in start})
    m = binary_metrics(y_test, predict(model, x_test))
    return {"accuracy": m["accuracy"], "auc": m["auc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (the nodes' noise differs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    encoder = get_task("adult_income").encoder()
    paths = write_adult_sites(Path(tempfile.mkdtemp(prefix="r2dde-tune-")), 4, args.seed, alpha=0.5)
    rng = np.random.default_rng(0)
    sites = {}
    for site, path in paths.items():
        frame = load_file(path, site, validate_adult)
        keep = rng.random(len(frame)) < 0.8
        sites[site] = (encoder.encode(frame)[keep], encoder.labels(frame)[keep])
    test = validate_adult(load_adult_test(), "adult.test")
    x_test, y_test = encoder.encode(test), encoder.labels(test)
    rows = []
    for rounds, epochs, batch, lr, optimizer, momentum, by_records in SWEEP:
        started = time.perf_counter()
        scores = [
            federated(
                sites,
                x_test,
                y_test,
                args.epsilon,
                rounds,
                epochs,
                batch,
                lr,
                optimizer,
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
            "node_optimizer": optimizer,
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
        json.dumps({"parameters": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2)
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
