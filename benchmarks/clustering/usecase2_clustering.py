"""Use case 2: federated DP k-means of companies against its anchors, in one run.

Run by hand (not a test):
    PYTHONPATH=. .venv/bin/python benchmarks/clustering/usecase2_clustering.py [--repeats 5]

On one synthetic population (``simulations.companies``, 20 000 establishments over France
Travail, Carif-Oref and APEC), with k = 8 and ε = 1 per site:
  - federated DP k-means (this repository): DP coreset + 3 Lloyd steps + the skill-needs table and
    its evaluation, the node code of ``node_agent.company_study`` called in process (no broker);
  - non-private k-means++ on the pooled rows (scikit-learn, 10 inits): the cost anchor;
  - diffprivlib's central DP k-means on the pooled rows at ε = 1 (IBM diffprivlib 0.6.6);
  - the skill-needs model without noise on the pooled rows (k-means++ types): the precision anchor.
Cost = Σ squared distance to the nearest centre on the pooled rows, in the clustering's feature
space. ARI against the hidden types. Writes ``benchmarks/results/usecase2_clustering.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from coordinator.company_clustering import run_company_clustering
from node_agent.dp_release import NodeRandomness
from simulations.companies import TRUTH_FILE, generate_companies
from simulations.usecase2 import DirectFederation, RecordingGate, sites_from_files
from tasks import clustering, skill_needs

RESULTS = Path(__file__).resolve().parents[1] / "results" / "usecase2_clustering.json"


def _diffprivlib_kmeans():  # type: ignore[no-untyped-def]
    """diffprivlib's KMeans. Its package imports its forest module, which does not import with
    scikit-learn 1.9 (``sklearn.tree._tree.DOUBLE`` is gone); k-means does not use it, so the
    forest module is replaced by a stub that fails only if used."""
    stub = types.ModuleType("diffprivlib.models.forest")

    class _Unavailable:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ImportError("diffprivlib's forests do not import with this scikit-learn")

    stub.RandomForestClassifier = stub.DecisionTreeClassifier = _Unavailable  # type: ignore[attr-defined]
    sys.modules.setdefault("diffprivlib.models.forest", stub)
    import diffprivlib
    from diffprivlib.models import KMeans as DpKMeans

    return DpKMeans, diffprivlib.__version__


def _bounds(features) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """The public box the features live in (what diffprivlib needs to calibrate its noise)."""
    low, high = [], []
    for block in features.blocks:
        width = len(block.names)
        if width == 1:
            low.append(-0.5), high.append(0.5)
        else:
            low += [0.0] * width
            high += [float(np.sqrt(block.max_sq_norm))] * width
    return np.array(low), np.array(high)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--companies", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=8, help="0: chosen on the DP coreset, as the scenario does")
    parser.add_argument("--lloyd", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = generate_companies(root, seed=args.seed, companies=args.companies)
        delta = 1.0 / (10 * 60000)  # the grant's δ for these holders (largest declared dataset)
        sites, rows = sites_from_files(paths, epsilon=args.epsilon, delta=delta, lloyd_iterations=args.lloyd)
        truth = pd.read_csv(root / TRUTH_FILE, dtype=str).set_index(["site", "siret"])["type"]
    x = np.vstack([s.x for s in sites.values()])
    true_types = np.concatenate([truth.loc[[(n, s) for s in rows[n]["siret"]]].to_numpy() for n in sites])
    features = next(iter(sites.values())).features
    sought = np.vstack([s.sought for s in sites.values()])
    needs = np.vstack([s.needs for s in sites.values()])
    holdout = np.concatenate([skill_needs.in_holdout(s.pseudonyms) for s in sites.values()])

    started = time.perf_counter()
    anchor_k = args.k or 8
    anchor = KMeans(anchor_k, n_init=10, random_state=args.seed).fit(x)
    anchor_seconds = time.perf_counter() - started
    anchors = {anchor_k: float(anchor.inertia_)}
    anchor_types = anchor.labels_
    exact = skill_needs.table_statistics(anchor_types[~holdout], sought[~holdout], needs[~holdout], anchor_k)
    model = skill_needs.SkillNeedsModel.from_statistics(exact, anchor_k)
    anchor_eval = skill_needs.evaluation_statistics(
        model.predict(anchor_types[holdout], sought[holdout]), needs[holdout]
    )
    popular = np.argsort(-needs[~holdout].sum(axis=0))[:3]
    popularity = skill_needs.evaluation_statistics(np.tile(popular, (int(holdout.sum()), 1)), needs[holdout])

    federated, central = [], []
    dp_kmeans, dp_version = _diffprivlib_kmeans()
    low, high = _bounds(features)
    for repeat in range(args.repeats):
        for site in sites.values():
            site.gate, site.randomness = RecordingGate(), NodeRandomness()
        started = time.perf_counter()
        outcome = run_company_clustering(
            DirectFederation(sites),
            features,
            k=args.k or None,
            lloyd_iterations=args.lloyd,
            min_cell_size=11,
            min_sites=2,
            seed=repeat,
        )
        seconds = time.perf_counter() - started
        types_dp = clustering.assign(x, outcome.centres)
        model_dp = outcome.model
        assert model_dp is not None and outcome.precision_at_3 is not None
        true_eval = skill_needs.evaluation_statistics(
            model_dp.predict(types_dp[holdout], sought[holdout]), needs[holdout]
        )
        if outcome.k not in anchors:  # the anchor at the k the DP run chose
            anchors[outcome.k] = float(KMeans(outcome.k, n_init=10, random_state=args.seed).fit(x).inertia_)
        federated.append(
            {
                "k": outcome.k,
                "cost_ratio": clustering.kmeans_cost(x, outcome.centres) / anchors[outcome.k],
                "ari": adjusted_rand_score(true_types, types_dp),
                "released_clusters": len(outcome.centres),
                "precision_at_3_released": outcome.precision_at_3[0],
                "precision_at_3_true": true_eval[0] / true_eval[2],
                "hit_at_3_released": outcome.hit_at_3[0],  # type: ignore[index]
                "epsilon_per_site": {s: r.epsilon_spent for s, r in outcome.sites.items()},
                "seconds": seconds,
            }
        )
        started = time.perf_counter()
        dp = dp_kmeans(n_clusters=outcome.k, epsilon=args.epsilon, bounds=(low, high), random_state=repeat)
        dp.fit(x)
        central.append(
            {
                "cost_ratio": clustering.kmeans_cost(x, dp.cluster_centers_) / anchors[outcome.k],
                "ari": adjusted_rand_score(true_types, clustering.assign(x, dp.cluster_centers_)),
                "seconds": time.perf_counter() - started,
            }
        )
        ratios = f"federated {federated[-1]['cost_ratio']:.3f}, diffprivlib {central[-1]['cost_ratio']:.3f}"
        print(f"repeat {repeat}: {ratios}")

    def summary(runs: list[dict[str, object]], key: str) -> dict[str, float]:
        values = np.array([float(r[key]) for r in runs])  # type: ignore[arg-type]
        return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}

    result = {
        "benchmark": "usecase2_clustering",
        "setup": {
            "companies": args.companies,
            "rows_pooled": len(x),
            "rows_per_site": {s: len(site.x) for s, site in sites.items()},
            "features": features.width,
            "k": args.k or "chosen on the DP coreset",
            "lloyd_iterations": args.lloyd,
            "epsilon_per_site": args.epsilon,
            "delta": delta,
            "sigma": next(iter(sites.values())).sigma,
            "releases_per_site": next(iter(sites.values())).releases_planned,
            "repeats": args.repeats,
            "diffprivlib": dp_version,
            "machine": f"{platform.machine()}, {platform.python_version()}",
        },
        "nonprivate_pooled_kmeanspp": {
            "cost": float(anchor.inertia_),
            "ari": float(adjusted_rand_score(true_types, anchor_types)),
            "precision_at_3": float(anchor_eval[0] / anchor_eval[2]),
            "hit_at_3": float(anchor_eval[1] / anchor_eval[2]),
            "seconds": anchor_seconds,
        },
        "popularity_baseline": {"precision_at_3": float(popularity[0] / popularity[2])},
        "federated_dp": {
            key: summary(federated, key)
            for key in (
                "cost_ratio",
                "ari",
                "precision_at_3_released",
                "precision_at_3_true",
                "hit_at_3_released",
                "seconds",
            )
        },
        "diffprivlib_central_dp": {key: summary(central, key) for key in ("cost_ratio", "ari", "seconds")},
        "runs": {"federated_dp": federated, "diffprivlib_central_dp": central},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2, default=float))


if __name__ == "__main__":
    main()
