"""UCI Adult over non-IID sites: federated DP vs centralized non-private vs each site alone.

Run by hand (not a test):  .venv/bin/python benchmarks/federated/adult_federated.py
Writes benchmarks/results/adult_federated.json and prints the table. All anchors run in this
same process, on the same split, evaluated on the official `adult.test`.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from alone import train_alone

from coordinator.study_config import StudyConfig
from node_agent.dp_plan import plan_study, site_delta
from node_agent.training import predict, train_round
from simulations.adult import load_adult_test, write_adult_sites
from simulations.engine import run_simulated_study, site_nodes
from tasks.metrics import binary_metrics
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import load_adult_site, validate_adult

RESULTS = Path(__file__).resolve().parents[1] / "results" / "adult_federated.json"


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    m = binary_metrics(y, predict(model, x))
    return {"accuracy": m["accuracy"], "auc": m["auc"]}


def time_per_epoch(
    x: np.ndarray, y: np.ndarray, epsilon: float, args: argparse.Namespace, repeats: int = 3
) -> float:
    spec = get_task("adult_income")
    plan = plan_study(
        n_train=len(y),
        batch_size=args.batch_size,
        local_epochs=1,
        rounds=args.rounds,
        target_epsilon=epsilon,
        delta=site_delta(args.delta, len(y)),
        max_grad_norm=args.max_grad_norm,
    )
    model = mlp(x.shape[1], spec.hidden, seed=args.seed)
    train_round(model, x, y, plan, learning_rate=args.learning_rate, seed=0)  # warm-up
    started = time.perf_counter()
    for r in range(repeats):
        train_round(model, x, y, plan, learning_rate=args.learning_rate, seed=r)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=0.03)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="Dirichlet concentration of the non-IID split"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epsilons", default="1,3,inf")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = get_task("adult_income")
    encoder = spec.encoder()
    work = Path(tempfile.mkdtemp(prefix="r2dde-adult-"))
    paths = write_adult_sites(work / "data", args.sites, args.seed, alpha=args.alpha)
    site_frames = {s: load_adult_site(p, s) for s, p in paths.items()}
    test = validate_adult(load_adult_test(), "adult.test")
    x_test, y_test = encoder.encode(test), encoder.labels(test)
    site_xy = {s: (encoder.encode(f), encoder.labels(f)) for s, f in site_frames.items()}
    x_all = np.vstack([xy[0] for xy in site_xy.values()])
    y_all = np.concatenate([xy[1] for xy in site_xy.values()])

    rows: list[dict[str, object]] = []
    central = train_alone("adult_income", x_all, y_all, math.inf, args)
    rows.append(
        {"setting": "centralized, non-private", "epsilon": "inf", **evaluate(central, x_test, y_test)}
    )
    for eps_text in args.epsilons.split(","):
        epsilon = float(eps_text)
        config = StudyConfig(
            study_id=f"adult-eps-{eps_text}",
            task="adult_income",
            sites=tuple(paths),
            num_server_rounds=args.rounds,
            min_sites=args.sites,
            target_epsilon=epsilon,
            delta=args.delta,
            local_epochs=args.local_epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_grad_norm=args.max_grad_norm,
            seed=args.seed,
            study_dir=work / f"study-{eps_text}",
        )
        started = time.perf_counter()
        report = run_simulated_study(config, site_nodes(work / "data", list(paths)))
        wall = time.perf_counter() - started
        model = mlp(encoder.width, spec.hidden)
        model.load_state_dict(torch.load(config.study_dir / "model.pt")["state_dict"])
        sites = report["sites"]
        assert isinstance(sites, dict)
        rows.append(
            {
                "setting": "federated",
                "epsilon": eps_text,
                **evaluate(model, x_test, y_test),
                "wall_seconds": round(wall, 1),
                "site_epsilon": {s: v["epsilon"] for s, v in sites.items()},
            }
        )
        for site, (x, y) in site_xy.items():
            alone = train_alone("adult_income", x, y, epsilon, args)
            rows.append(
                {
                    "setting": f"{site} alone ({len(y)} records)",
                    "epsilon": eps_text,
                    **evaluate(alone, x_test, y_test),
                }
            )

    dp_time = time_per_epoch(x_all, y_all, 3.0, args)
    plain_time = time_per_epoch(x_all, y_all, math.inf, args)
    centralized_acc = rows[0]["accuracy"]
    fed3 = next(r for r in rows if r["setting"] == "federated" and r["epsilon"] == "3")
    result = {
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform()},
        "parameters": vars(args) | {"out": str(args.out)},
        "rows": rows,
        "timing": {
            "records": len(y_all),
            "dp_seconds_per_epoch": dp_time,
            "non_dp_seconds_per_epoch": plain_time,
            "dp_over_non_dp": dp_time / plain_time,
        },
        "goals": {
            "federated_eps3_gap_points": 100 * (float(centralized_acc) - float(fed3["accuracy"])),  # type: ignore[arg-type]
            "federated_eps3_within_1.5_points": 100 * (float(centralized_acc) - float(fed3["accuracy"]))
            <= 1.5,  # type: ignore[arg-type]
            "dp_time_ratio_at_most_1.5": dp_time / plain_time <= 1.5,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"{'setting':<34} {'ε':>5} {'accuracy':>9} {'AUC':>7}")
    for row in rows:
        print(f"{row['setting']:<34} {row['epsilon']:>5} {row['accuracy']:>9.4f} {row['auc']:>7.4f}")
    t = result["timing"]
    print(
        f"DP / non-DP time per epoch: {t['dp_seconds_per_epoch']:.3f} s"
        f" / {t['non_dp_seconds_per_epoch']:.3f} s"
        f" = {t['dp_over_non_dp']:.2f}x"
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
