"""Fairness mitigation for the autodiagnostic: AUC and fairness gaps before and after, on the demo
scenario (synthetic partners of use case 1) and on UCI Adult (sex, race).

Run by hand (not a test), after `make demo` (it reads the demo's partner files and keys):
    PYTHONPATH=. .venv/bin/python benchmarks/autodiag/fairness_mitigation.py --study runs/demo

Settings, each trained centrally on the pooled analysis views (the mitigation's *effect*, measured
without DP noise so that it is not drowned in it; the federated DP numbers are the study's own):
  - with protected inputs: the encoding before this change (sex and age band as one-hots);
  - no protected inputs: the use-case-1 encoding now (``tasks.registry.parcours_encoder``);
  - no protected inputs + reweighing (Kamiran & Calders 2012: weight = P(g)P(y)/P(g,y) over the
    cells of every protected attribute crossed, so that group and outcome are independent);
  - protected inputs while training only, everyone scored at the population mix (Pope & Sydnor 2011);
  - no protected inputs + a constrained objective (fairlearn's ExponentiatedGradient with a
    demographic-parity or true-positive-rate-parity constraint on the age band / on sex; the
    protected attribute is used while training only, never as an input).
Gaps are those the release gate reads (exact here, noisy in a study) at the 0.5
threshold on the nodes' own holdouts pooled (groups under 11 suppressed). The ground truth (the
generator's own probabilities) is the ceiling for use case 1.
Writes benchmarks/results/autodiag_fairness_mitigation.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.reductions import DemographicParity, ExponentiatedGradient, TruePositiveRateParity
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from anonymization import anonymize_parcours
from anonymization.keys import load_linkage_key
from node_agent.local_data import split_and_encode
from node_agent.preparation import holdout_membership
from node_agent.reweighing import kamiran_calders_weights
from node_agent.settings import NodeSettings
from node_agent.sources import load_file
from simulations.adult import load_adult_test, load_adult_train
from simulations.ground_truth import GROUND_TRUTH
from tasks import reference
from tasks.encoding import Categorical, TabularEncoder
from tasks.registry import AGE_BANDS, adult_encoder, get_task
from tasks.schema import ADULT_RACES, ADULT_SEXES, validate_parcours

RESULTS = Path(__file__).resolve().parents[1] / "results" / "autodiag_fairness_mitigation.json"
SITES = ("france_travail", "apec", "missions_locales")


#: Groups smaller than this are left out of the gaps, as the release gate's cells are.
MIN_GROUP = 11


def gaps(y: np.ndarray, scores: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Exact gaps at the 0.5 threshold (the gate reads the same statistics, noisy): the spread across
    groups of the selection rate (demographic parity), of the true-positive rate (equal
    opportunity) and of the observed outcome rate."""
    predicted = scores >= 0.5
    out = {}
    for attribute, g in groups.items():
        rates = []
        for value in np.unique(g):
            member = g == value
            positive = member & (y == 1)
            if member.sum() >= MIN_GROUP and positive.any():
                rates.append((predicted[member].mean(), predicted[positive].mean(), y[member].mean()))
        spread = np.ptp(np.array(rates), axis=0) if len(rates) >= 2 else np.full(3, np.nan)
        out[attribute] = {
            "demographic_parity_gap": round(float(spread[0]), 4),
            "equal_opportunity_gap": round(float(spread[1]), 4),
            "observed_outcome_gap": round(float(spread[2]), 4),
        }
    return out


def reweighing(y: np.ndarray, groups: dict[str, np.ndarray]) -> np.ndarray:
    """Kamiran & Calders: w(g, y) = P(g) P(y) / P(g, y) over the crossed protected cells (the node's
    function, ``node_agent.reweighing``, rescaled from max 1 to mean 1 for a loss weight)."""
    w = kamiran_calders_weights(y, groups)
    return w / w.mean()


def evaluate(name, x_train, y_train, x_test, y_test, groups_test, weights=None, started=None):
    model = LogisticRegression(max_iter=2000)
    model.fit(x_train, y_train, sample_weight=weights)
    scores = model.predict_proba(x_test)[:, 1]
    return row(name, y_test, scores, groups_test, started)


def constrained(name, constraint, x_train, y_train, sensitive, x_test, y_test, groups_test, started):
    mitigator = ExponentiatedGradient(LogisticRegression(max_iter=2000), constraint, eps=0.01)
    mitigator.fit(x_train, y_train, sensitive_features=sensitive)
    scores = mitigator._pmf_predict(x_test)[:, 1]  # the randomized classifier's P(ŷ = 1)
    return row(name, y_test, scores, groups_test, started)


def row(name, y_test, scores, groups_test, started):
    return {
        "setting": name,
        "auc": round(float(roc_auc_score(y_test, scores)), 4),
        "accuracy": round(float(((scores >= 0.5) == y_test).mean()), 4),
        "gaps": gaps(y_test, scores, groups_test),
        "seconds": round(time.monotonic() - started, 2) if started else None,
    }


def population_mix(name, encoder, train, y_train, test, y_test, groups_test, columns, started):
    """Pope & Sydnor (2011), for profiling the unemployed: estimate *with* the protected attributes
    (so that the other coefficients do not absorb them as proxies), then score everyone at the
    population mix — the prediction averaged over the training shares of the protected cells."""
    model = LogisticRegression(max_iter=2000)
    model.fit(encoder.encode(train), y_train)
    cells = train.groupby(list(columns)).size() / len(train)
    scores = np.zeros(len(test))
    for values, share in cells.items():
        values = values if isinstance(values, tuple) else (values,)
        scored = test.assign(**dict(zip(columns, values, strict=True)))
        scores += share * model.predict_proba(encoder.encode(scored))[:, 1]
    return row(name, y_test, scores, groups_test, started)


def with_protected_inputs(encoder: TabularEncoder) -> TabularEncoder:
    """The use-case-1 encoding before this change: sex and age band one-hot in front."""
    return TabularEncoder(
        features=(Categorical("age_band", AGE_BANDS), Categorical("sex", ("F", "M")), *encoder.features),
        label=encoder.label,
        group_columns=encoder.group_columns,
    )


def _holdout(study: Path, study_id: str, site: str, view: pd.DataFrame) -> np.ndarray:
    """The node's own holdout membership (``node_agent.preparation.holdout_membership``)."""
    settings = NodeSettings(
        site=site, data_dir=study / "data" / site, keys_dir=study / "keys" / "nodes" / site, broker_url=None
    )
    return holdout_membership(view, settings=settings, study_id=study_id)


@dataclass(frozen=True)
class DemoPartners:
    """The demo partners' analysis views as their nodes build them, split as their nodes split them."""

    report: dict
    fields: tuple[str, ...]
    raws: list[pd.DataFrame]
    views: list[pd.DataFrame]
    splits: list[tuple[np.ndarray, np.ndarray]]


def demo_partners(study: Path) -> DemoPartners:
    report = json.loads((study / "report.json").read_text(encoding="utf-8"))
    fields = tuple(report["grant"]["fields"])
    spec = get_task("employment_outcome")
    raws, views = [], []
    for site in SITES:
        raw = load_file(study / "data" / site / "parcours.csv", site, validate_parcours)
        view, _ = anonymize_parcours(
            raw,
            source=site,
            linkage_key=load_linkage_key(study / "keys" / "nodes" / site / "linkage.key"),
            study_id=report["study_id"],
            fields=[*fields, "linkage_pseudonym"],
        )
        raws.append(raw)
        views.append(view)
    # The nodes' own holdouts (same membership function, same keys), pooled.
    held = [_holdout(study, report["study_id"], s, v) for s, v in zip(SITES, views, strict=True)]
    parts = [
        split_and_encode(spec, v, fields=fields, counts={}, holdout=h)
        for v, h in zip(views, held, strict=True)
    ]
    splits = [(np.flatnonzero(~h), np.flatnonzero(h)) for h in held]
    encoder = spec.encoder_for(fields)
    test = pd.concat([v.iloc[te] for v, (_, te) in zip(views, splits, strict=True)])
    assert np.allclose(encoder.encode(test), np.vstack([p.x_test for p in parts]))  # the nodes' own holdouts
    return DemoPartners(report, fields, raws, views, splits)


def usecase1(study: Path) -> dict[str, object]:
    demo = demo_partners(study)
    report, fields, raws, views, splits = demo.report, demo.fields, demo.raws, demo.views, demo.splits
    spec = get_task("employment_outcome")
    encoder = spec.encoder_for(fields)
    old = with_protected_inputs(encoder)
    train = pd.concat([v.iloc[tr] for v, (tr, _) in zip(views, splits, strict=True)])
    test = pd.concat([v.iloc[te] for v, (_, te) in zip(views, splits, strict=True)])
    holdout_raw = pd.concat([r.iloc[te] for r, (_, te) in zip(raws, splits, strict=True)])
    x_train, y_train = encoder.encode(train), encoder.labels(train)
    x_test, y_test = encoder.encode(test), encoder.labels(test)
    assert (holdout_raw["employed_6m"].to_numpy() == y_test).all()
    groups_train, groups_test = encoder.groups(train), encoder.groups(test)

    # Ground truth on the same holdout people: the generator's probabilities.
    rows = []
    started = time.monotonic()
    bassin = holdout_raw["commune"].map(reference.commune_to_bassin)
    tension = [
        reference.bassin_tension_index(b, r) for b, r in zip(bassin, holdout_raw["rome_target"], strict=True)
    ]
    truth = GROUND_TRUTH.probability(
        tension=np.array(tension),
        education_level=holdout_raw["education_level"].to_numpy(),
        months_unemployed=holdout_raw["months_unemployed"].to_numpy(),
        birth_year=holdout_raw["birth_year"].to_numpy(),
        driving_licence=holdout_raw["driving_licence"].to_numpy(),
        mobility_km=holdout_raw["mobility_km"].to_numpy(),
        training_followed=holdout_raw["training_followed"].to_numpy(),
        same_occupation=(holdout_raw["rome_target"] == holdout_raw["rome_previous"]).to_numpy(),
        sex=holdout_raw["sex"].to_numpy(),
    )
    rows.append(
        row("ground truth (generator's probabilities, the ceiling)", y_test, truth, groups_test, started)
    )
    started = time.monotonic()
    rows.append(
        evaluate(
            "with protected inputs (sex, age band)",
            old.encode(train),
            y_train,
            old.encode(test),
            y_test,
            groups_test,
            started=started,
        )
    )
    started = time.monotonic()
    rows.append(
        evaluate("no protected inputs", x_train, y_train, x_test, y_test, groups_test, started=started)
    )
    started = time.monotonic()
    rows.append(
        population_mix(
            "protected inputs in training, scored at the population mix",
            old,
            train,
            y_train,
            test,
            y_test,
            groups_test,
            ("sex", "age_band"),
            started,
        )
    )
    started = time.monotonic()
    rows.append(
        evaluate(
            "no protected inputs + reweighing (sex × age band)",
            x_train,
            y_train,
            x_test,
            y_test,
            groups_test,
            weights=reweighing(y_train, groups_train),
            started=started,
        )
    )
    for label, constraint in (
        ("demographic parity", DemographicParity(difference_bound=0.05)),
        ("true-positive-rate parity", TruePositiveRateParity(difference_bound=0.05)),
    ):
        started = time.monotonic()
        rows.append(
            constrained(
                f"no protected inputs + {label} on age band (fairlearn)",
                constraint,
                x_train,
                y_train,
                groups_train["age_band"],
                x_test,
                y_test,
                groups_test,
                started,
            )
        )
    federated = {
        attribute: {
            k: report["fairness"][attribute][k]
            for k in ("demographic_parity_gap", "equal_opportunity_gap", "observed_outcome_gap")
        }
        for attribute in report["fairness"]
    }
    return {
        "study": str(study),
        "study_id": report["study_id"],
        "train_records": int(len(y_train)),
        "holdout_records": int(len(y_test)),
        "federated_dp_study": {
            "auc": report["metrics"]["auc"],
            "gaps": federated,
            "features": report["features"],
        },
        "rows": rows,
    }


def adult() -> dict[str, object]:
    encoder = adult_encoder()
    blind = TabularEncoder(
        features=tuple(f for f in encoder.features if f.columns[0] not in ("sex", "race")),
        label=encoder.label,
        label_transform=encoder.label_transform,
        group_columns=encoder.group_columns,
    )
    train, test = load_adult_train(), load_adult_test()
    y_train, y_test = encoder.labels(train), encoder.labels(test)
    groups_train, groups_test = encoder.groups(train), encoder.groups(test)
    x_train, x_test = blind.encode(train), blind.encode(test)
    rows = []
    started = time.monotonic()
    rows.append(
        evaluate(
            "with protected inputs (sex, race)",
            encoder.encode(train),
            y_train,
            encoder.encode(test),
            y_test,
            groups_test,
            started=started,
        )
    )
    started = time.monotonic()
    rows.append(
        evaluate("no protected inputs", x_train, y_train, x_test, y_test, groups_test, started=started)
    )
    started = time.monotonic()
    rows.append(
        population_mix(
            "protected inputs in training, scored at the population mix",
            encoder,
            train,
            y_train,
            test,
            y_test,
            groups_test,
            ("sex", "race"),
            started,
        )
    )
    started = time.monotonic()
    rows.append(
        evaluate(
            "no protected inputs + reweighing (sex × race)",
            x_train,
            y_train,
            x_test,
            y_test,
            groups_test,
            weights=reweighing(y_train, groups_train),
            started=started,
        )
    )
    for label, constraint in (
        ("demographic parity", DemographicParity(difference_bound=0.02)),
        ("true-positive-rate parity", TruePositiveRateParity(difference_bound=0.02)),
    ):
        started = time.monotonic()
        rows.append(
            constrained(
                f"no protected inputs + {label} on sex (fairlearn)",
                constraint,
                x_train,
                y_train,
                groups_train["sex"],
                x_test,
                y_test,
                groups_test,
                started,
            )
        )
    return {
        "train_records": int(len(y_train)),
        "test_records": int(len(y_test)),
        "groups": {"sex": list(ADULT_SEXES), "race": list(ADULT_RACES)},
        "rows": rows,
    }


def print_table(title: str, rows: list[dict[str, object]], attributes: tuple[str, ...]) -> None:
    print(f"\n{title}")
    header = f"{'setting':<62} {'AUC':>6}" + "".join(
        f" {a[:8] + ' DP':>12} {a[:8] + ' EO':>12}" for a in attributes
    )
    print(header)
    for r in rows:
        cells = "".join(
            f" {r['gaps'][a]['demographic_parity_gap']:>12.3f} {r['gaps'][a]['equal_opportunity_gap']:>12.3f}"
            for a in attributes
        )
        print(f"{r['setting']:<62} {r['auc']:>6.3f}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--study", type=Path, default=Path("runs/demo"), help="a use-case-1 study folder with data/ and keys/"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.study / "data").is_dir():
        sys.exit(f"{args.study}: no data/ folder — run `make demo` first (or pass --study)")
    result = {"usecase1": usecase1(args.study), "adult": adult()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print_table(
        "Use case 1 (demo partners, pooled holdouts)", result["usecase1"]["rows"], ("sex", "age_band")
    )
    fed = result["usecase1"]["federated_dp_study"]
    print(f"federated DP study {result['usecase1']['study_id']}: AUC {fed['auc']:.3f}, gaps {fed['gaps']}")
    print_table("UCI Adult (adult.test)", result["adult"]["rows"], ("sex", "race"))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
