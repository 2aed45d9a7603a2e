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
from node_agent.dp_release import NodeRandomness
from node_agent.sources import load_file
from node_agent.training import predict, train_round
from simulations.adult import load_adult_test, write_adult_sites
from simulations.engine import run_simulated_study, site_nodes
from tasks.metrics import binary_metrics
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import validate_adult

RESULTS = Path(__file__).resolve().parents[1] / "results" / "adult_federated.json"


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    m = binary_metrics(y, predict(model, x))
    return {"accuracy": m["accuracy"], "auc": m["auc"]}


def time_per_epoch(
    x: np.ndarray, y: np.ndarray, batch_size: int, args: argparse.Namespace, repeats: int = 15
) -> dict[str, float]:
    """Fastest CPU seconds per epoch (one thread) of `repeats`: DP-SGD at ε = 3 (the node's secret
    randomness and secure noise draw) against plain SGD on the same Poisson batches, interleaved."""
    spec = get_task("adult_income")
    plans = {
        name: plan_study(
            n_train=len(y),
            batch_size=batch_size,
            local_epochs=1,
            rounds=args.rounds,
            target_epsilon=epsilon,
            delta=site_delta(args.delta, len(y)),
            max_grad_norm=args.max_grad_norm,
        )
        for name, epsilon in (("dp", 3.0), ("non_dp", math.inf))
    }
    times: dict[str, list[float]] = {name: [] for name in plans}
    for repeat in range(repeats + 1):
        for name, plan in plans.items():
            model = mlp(x.shape[1], spec.hidden, seed=args.seed)
            started = time.process_time()  # CPU time: the shared machine's load does not count
            train_round(model, x, y, plan, learning_rate=args.learning_rate, randomness=NodeRandomness())
            if repeat:  # the first is a warm-up
                times[name].append(time.process_time() - started)
    # The fastest of the repeats: on a shared machine every other load only adds time.
    dp, plain = min(times["dp"]), min(times["non_dp"])
    return {
        "batch_size": batch_size,
        "dp_seconds_per_epoch": dp,
        "non_dp_seconds_per_epoch": plain,
        "dp_over_non_dp": dp / plain,
        "median_dp_over_non_dp": float(np.median(times["dp"]) / np.median(times["non_dp"])),
        "repeats": repeats,
    }


def secure_noise_cost(
    x: np.ndarray, batch_size: int, args: argparse.Namespace, repeats: int = 200
) -> dict[str, float]:
    """What Opacus' secure_mode noise draw (sum of Gaussians, against floating-point attacks) costs per
    step over a plain draw, for this model's parameters, from the node's secretly seeded generator."""
    from opacus.optimizers.optimizer import _generate_noise

    params = list(mlp(x.shape[1], get_task("adult_income").hidden, seed=args.seed).parameters())
    generator = NodeRandomness().torch()
    seconds = {}
    for secure in (False, True):
        started = time.process_time()
        for _ in range(repeats):
            for p in params:
                _generate_noise(1.0, p, generator=generator, secure_mode=secure)
        seconds[secure] = (time.process_time() - started) / repeats
    steps = math.ceil(len(x) / batch_size)
    return {
        "plain_draw_seconds_per_step": seconds[False],
        "secure_draw_seconds_per_step": seconds[True],
        "secure_extra_seconds_per_epoch": (seconds[True] - seconds[False]) * steps,
    }


def in_process(args: argparse.Namespace) -> None:
    """The federated rows without Flower's engine, scored on adult.test with the settings given."""
    from adult_tuning import federated

    torch.set_num_threads(1)
    encoder = get_task("adult_income").encoder()
    paths = write_adult_sites(
        Path(tempfile.mkdtemp(prefix="r2dde-adult-")), args.sites, args.seed, alpha=args.alpha
    )
    rng = np.random.default_rng(0)
    sites, frames = {}, []
    for site, path in paths.items():
        frame = load_file(path, site, validate_adult)
        frames.append(frame)
        keep = rng.random(len(frame)) < 0.8  # the nodes' holdout share stays out of training
        sites[site] = (encoder.encode(frame)[keep], encoder.labels(frame)[keep])
    test = validate_adult(load_adult_test(), "adult.test")
    x_test, y_test = encoder.encode(test), encoder.labels(test)
    x_all = np.vstack([encoder.encode(f) for f in frames])
    y_all = np.concatenate([encoder.labels(f) for f in frames])
    central = evaluate(train_alone("adult_income", x_all, y_all, math.inf, args), x_test, y_test)
    rows: list[dict[str, object]] = [{"setting": "centralized, non-private", "epsilon": "inf", **central}]
    for eps_text in args.epsilons.split(","):
        runs = [
            federated(
                sites,
                x_test,
                y_test,
                float(eps_text),
                args.rounds,
                args.local_epochs,
                args.batch_size,
                args.learning_rate,
                args.max_grad_norm,
                0.0,
                True,
                args,
            )
            for _ in range(args.in_process)
        ]
        accuracy = [r["accuracy"] for r in runs]
        rows.append(
            {
                "setting": "federated, in process",
                "epsilon": eps_text,
                "accuracy": float(np.mean(accuracy)),
                "auc": float(np.mean([r["auc"] for r in runs])),
                "runs": runs,
                "gap_points": 100 * (central["accuracy"] - float(np.mean(accuracy))),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    out = args.out.with_name(args.out.stem + "_in_process.json")
    out.write_text(
        json.dumps({"parameters": vars(args) | {"out": str(out)}, "rows": rows}, indent=2, default=str)
    )
    for row in rows:
        print(f"{row['setting']:<34} {row['epsilon']:>5} {row['accuracy']:>9.4f} {row['auc']:>7.4f}")
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--local-epochs", type=int, default=4)
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
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="RUNS",
        help="accuracy only, on a loaded machine: FedAvg in this process (adult_tuning.py's, each node's "
        "own plan and train_round, 80 %% of each site), RUNS runs per ε; no timing, no Flower engine",
    )
    args = parser.parse_args()
    if args.in_process:
        in_process(args)
        return
    torch.set_num_threads(1)
    spec = get_task("adult_income")
    encoder = spec.encoder()
    work = Path(tempfile.mkdtemp(prefix="r2dde-adult-"))
    paths = write_adult_sites(work / "data", args.sites, args.seed, alpha=args.alpha)
    site_frames = {s: load_file(p, s, validate_adult) for s, p in paths.items()}
    test = validate_adult(load_adult_test(), "adult.test")
    x_test, y_test = encoder.encode(test), encoder.labels(test)
    site_xy = {s: (encoder.encode(f), encoder.labels(f)) for s, f in site_frames.items()}
    x_all = np.vstack([xy[0] for xy in site_xy.values()])
    y_all = np.concatenate([xy[1] for xy in site_xy.values()])

    # Timing first: Flower's simulation engine leaves threads in this process that CPU time would count.
    timing = [time_per_epoch(x_all, y_all, b, args) for b in sorted({args.batch_size, 512})]
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
        if math.isfinite(epsilon):
            pooled = train_alone("adult_income", x_all, y_all, epsilon, args)
            rows.append(
                {"setting": "centralized, DP-SGD", "epsilon": eps_text, **evaluate(pooled, x_test, y_test)}
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

    at_batch = next(t for t in timing if t["batch_size"] == args.batch_size)
    centralized_acc = float(rows[0]["accuracy"])  # type: ignore[arg-type]
    gaps = {
        eps: 100 * (centralized_acc - float(r["accuracy"]))  # type: ignore[arg-type]
        for r in rows
        if r["setting"] == "federated"
        for eps in [str(r["epsilon"])]
    }
    result = {
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform()},
        "parameters": vars(args) | {"out": str(args.out)},
        "randomness": "secret (NodeRandomness from the OS CSPRNG), secure_mode noise draw",
        "rows": rows,
        "timing": timing,
        "secure_noise": secure_noise_cost(x_all, args.batch_size, args),
        "goals": {
            "federated_gap_points": gaps,
            "federated_within_1.5_points": {eps: gap <= 1.5 for eps, gap in gaps.items()},
            "dp_time_ratio_at_most_1.5_at_batch_used": at_batch["dp_over_non_dp"] <= 1.5,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"{'setting':<34} {'ε':>5} {'accuracy':>9} {'AUC':>7}")
    for row in rows:
        print(f"{row['setting']:<34} {row['epsilon']:>5} {row['accuracy']:>9.4f} {row['auc']:>7.4f}")
    for t in timing:
        print(
            f"batch {t['batch_size']}: DP / non-DP time per epoch {t['dp_seconds_per_epoch']:.3f} s"
            f" / {t['non_dp_seconds_per_epoch']:.3f} s = {t['dp_over_non_dp']:.2f}x"
        )
    print(f"secure noise draw: {result['secure_noise']}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
