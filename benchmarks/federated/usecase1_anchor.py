"""Use case 1 on the synthetic partners: the governed federated study against its anchors.

Run by hand (not a test):  .venv/bin/python benchmarks/federated/usecase1_anchor.py
All in one process, on the same partners and the same granted fields:
  - federated, DP-SGD at ε per site (the governed `usecase1` scenario, broker and all);
  - centralized, non-private: the partners' analysis views pooled (what R2DDE avoids doing);
  - each site alone under the same ε;
  - the ground truth: the generator's own logistic model, the best any model can do.
Writes benchmarks/results/usecase1_anchor.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from alone import train_alone

from anonymization import anonymize_parcours
from anonymization.keys import load_linkage_key
from coordinator.study_config import StudyConfig
from node_agent.local_data import split_and_encode
from node_agent.preparation import holdout_membership
from node_agent.settings import NodeSettings
from node_agent.sources import load_file
from node_agent.training import predict
from simulations.ground_truth import GROUND_TRUTH
from simulations.scenarios import SCENARIOS, run_scenario
from tasks import reference
from tasks.metrics import binary_metrics
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import validate_parcours

RESULTS = Path(__file__).resolve().parents[1] / "results" / "usecase1_anchor.json"


def oracle_auc(raw: pd.DataFrame) -> float:
    """AUC of the true probabilities (what generated the outcomes) on these records."""
    bassin = raw["commune"].map(reference.commune_to_bassin)
    tension = [reference.bassin_tension_index(b, r) for b, r in zip(bassin, raw["rome_target"], strict=True)]
    probability = GROUND_TRUTH.probability(
        tension=np.array(tension),
        education_level=raw["education_level"].to_numpy(),
        months_unemployed=raw["months_unemployed"].to_numpy(),
        birth_year=raw["birth_year"].to_numpy(),
        driving_licence=raw["driving_licence"].to_numpy(),
        mobility_km=raw["mobility_km"].to_numpy(),
        training_followed=raw["training_followed"].to_numpy(),
        same_occupation=(raw["rome_target"] == raw["rome_previous"]).to_numpy(),
        sex=raw["sex"].to_numpy(),
    )
    return binary_metrics(raw["employed_6m"].to_numpy(), probability)["auc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--delta", type=float, default=2.2e-7)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenario = SCENARIOS["usecase1"]
    work = Path(tempfile.mkdtemp(prefix="r2dde-uc1-")) / "study"
    config = StudyConfig(
        study_id="usecase1-anchor",
        task=scenario.task,
        sites=scenario.default_sites,
        num_server_rounds=args.rounds,
        min_sites=3,
        target_epsilon=args.epsilon,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        study_dir=work,
    )
    report = run_scenario(scenario, config, people=args.people, narrate=print)
    fields = report["grant"]["fields"]
    spec = get_task(scenario.task)
    encoder = spec.encoder_for(tuple(fields))

    # The same analysis views the nodes built, pooled here only to measure the anchor.
    raws, views = {}, {}
    for site in config.sites:
        raws[site] = load_file(work / "data" / site / "parcours.csv", site, validate_parcours)
        views[site], _ = anonymize_parcours(
            raws[site],
            source=site,
            linkage_key=load_linkage_key(work / "keys" / "nodes" / site / "linkage.key"),
            study_id=config.study_id,
            fields=[*fields, "linkage_pseudonym"],
        )
    # The nodes' own deterministic holdouts (per study and site), so every row is scored on one test set.
    site_settings = {
        site: NodeSettings(site, work / "data" / site, keys_dir=work / "keys" / "nodes" / site)
        for site in config.sites
    }
    parts = {
        site: split_and_encode(
            spec,
            view,
            fields=tuple(fields),
            counts={},
            holdout=holdout_membership(view, settings=site_settings[site], study_id=config.study_id),
        )
        for site, view in views.items()
    }
    x_train = np.vstack([p.x_train for p in parts.values()])
    y_train = np.concatenate([p.y_train for p in parts.values()])
    x_test = np.vstack([p.x_test for p in parts.values()])
    y_test = np.concatenate([p.y_test for p in parts.values()])
    federated = mlp(encoder.width, spec.hidden)
    federated.load_state_dict(torch.load(work / "model.pt")["state_dict"])

    def auc(model: torch.nn.Module) -> dict[str, float]:
        m = binary_metrics(y_test, predict(model, x_test))
        return {"accuracy": m["accuracy"], "auc": m["auc"]}

    rows = [
        {
            "setting": "ground truth (generator's model)",
            "epsilon": "-",
            "auc": oracle_auc(pd.concat(raws.values())),
            "accuracy": float("nan"),
        },
        {
            "setting": "federated (3 partners, governed)",
            "epsilon": str(args.epsilon),
            "auc": report["metrics"]["auc"],
            "accuracy": report["metrics"]["accuracy"],
            "note": "each site's holdout, aggregated",
        },
        {
            "setting": "centralized, non-private (pooled)",
            "epsilon": "inf",
            **auc(train_alone("employment_outcome", x_train, y_train, math.inf, args)),
        },
        {
            "setting": "centralized, DP (pooled)",
            "epsilon": str(args.epsilon),
            **auc(train_alone("employment_outcome", x_train, y_train, args.epsilon, args)),
        },
    ]
    for site, part in parts.items():
        model = train_alone("employment_outcome", part.x_train, part.y_train, args.epsilon, args)
        setting = f"{site} alone ({len(part.y_train)} records)"
        rows.append({"setting": setting, "epsilon": str(args.epsilon), **auc(model)})
    result = {
        "parameters": vars(args) | {"out": str(args.out)},
        "fields": fields,
        "rows": rows,
        "sites": {s: {k: v[k] for k in ("epsilon", "examples")} for s, v in report["sites"].items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"{'setting':<40} {'ε':>5} {'AUC':>7} {'accuracy':>9}")
    for row in rows:
        print(f"{row['setting']:<40} {row['epsilon']:>5} {row['auc']:>7.4f} {row['accuracy']:>9.4f}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
