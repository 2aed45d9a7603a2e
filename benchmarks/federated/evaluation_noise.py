"""What the DP evaluation release does to the pooled AUC: bias, spread and interval coverage.

Synthetic holdouts at the demo's sizes (use case 1: 183 / 770 / 293 people, about 55 % positive,
a model of AUC ≈ 0.80), released through the nodes' own code path — `holdout_statistics`, the
Gaussian release at the demo's noise, `suppress_small_cells` — and pooled by the coordinator's
`PooledHoldout` / `pooled_quality`. Compares 10 and 20 score bins.

    python benchmarks/federated/evaluation_noise.py [--trials 200] [--noise-std 9.22]

Writes benchmarks/results/evaluation_noise.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from node_agent.dp_release import GaussianRelease, NodeRandomness, release
from tasks.metrics import (
    HoldoutLayout,
    HoldoutRelease,
    PooledHoldout,
    holdout_statistics,
    pooled_quality,
    score_bins,
    suppress_small_cells,
)

RESULTS = Path(__file__).resolve().parents[1] / "results" / "evaluation_noise.json"
SIZES = (183, 770, 293)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--noise-std", type=float, default=9.22, help="per cell and site (the demo's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sites = []
    for n in SIZES:
        y = (rng.random(n) < 0.55).astype(int)
        scores = 1 / (1 + np.exp(-(0.9 * y - 0.25 + 0.75 * rng.normal(size=n))))
        sites.append((y, scores, rng.choice(["F", "M"], n)))
    y_all = np.concatenate([s[0] for s in sites])
    s_all = np.concatenate([s[1] for s in sites])
    results = {
        "sizes": SIZES,
        "noise_std": args.noise_std,
        "trials": args.trials,
        "auc": float(roc_auc_score(y_all, s_all)),
    }
    randomness = NodeRandomness(reproducible_seed=1)  # a benchmark: reproducible, not private
    for bins in (10, 20):
        layout = HoldoutLayout(bins, (("sex", ("F", "M")),))
        spec = GaussianRelease(args.noise_std / layout.l2_sensitivity, layout.l2_sensitivity, 1e-7)
        binned = float(roc_auc_score(y_all, score_bins(s_all, bins)))
        estimates, covered = [], 0
        for _ in range(args.trials):
            releases = {}
            for i, (y, scores, sex) in enumerate(sites):
                exact = holdout_statistics(layout, y, scores, {"sex": sex}, [1000, len(y), 20])
                noisy = np.array([v.value for v in release(exact, spec, randomness)])
                kept = tuple(suppress_small_cells(layout, noisy, 11))
                releases[f"site{i}"] = HoldoutRelease(layout, kept, spec.noise_std, 1, 1, 3.0, 1e-7, 11)
            auc = pooled_quality(PooledHoldout.of(releases))["auc"]
            estimates.append(auc["value"])
            covered += auc["low"] <= binned <= auc["high"]
        results[f"bins_{bins}"] = {
            "binned_exact_auc": binned,
            "mean_estimate": float(np.mean(estimates)),
            "bias": float(np.mean(estimates) - binned),
            "spread": float(np.std(estimates)),
            "interval_coverage": covered / args.trials,
        }
        print(f"{bins} bins: {results[f'bins_{bins}']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
