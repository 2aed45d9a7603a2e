"""Use case 3: where publicly funded training leads to work — observed, expected, value added.

Four releases under one grant, their budget shares summing to 1 (``SHARES``; the nodes calibrate
σ so that they compose, under RDP, to the grant's ε; the broker refuses anything more):

1. **profile table** (0.10): employed at six months by age band × sex × education × months out
   of work, one histogram (sensitivity 1). The coordinator fits a main-effects logistic model on
   these noisy counts — DP *sufficient statistics*: the model is a function of this one release,
   which costs less than DP-SGD's many steps for the same categorical model.
2. **domain × zone, observed** (0.55): the employed / not employed histogram (counts and shares).
3. **domain × zone, expected** (0.20): the sum of each person's probability under the model
   (sensitivity 1, whatever the model the coordinator sends).
4. **provider table** (0.15): count, employment, durable employment and expected sum by provider,
   published where cells are large enough.

Value added = observed share − expected share, as InserJeunes' indicator, with a delta-method
interval that accounts for the noise of both sums (not for the model's own estimation error,
which is the same for every cell). By domain alone: the domain × zone releases summed over zones.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression

from tasks import keysets
from tasks.analytics import Measure, ProfileModel, QueryRequest, QuerySpec, release_plan
from tasks.noisy import linear_ratio

from .analytics import LEVEL, Combined, Exchange, QueryStudy, cell_count, combine_totals, is_suppressed

PURPOSE = "commande_publique_formation"
PROFILE_FIELDS = ("age_band", "sex", "education_level", "months_out_band")
#: Each release's share of the study's ε per site (they compose, under RDP, to the grant's ε).
SHARES = {"profile": 0.10, "domain_zone": 0.55, "domain_zone_expected": 0.20, "provider": 0.15}


class StudyScope(Protocol):
    """What a query is scoped by: the study, its sites and its ε (the ground truth has no QueryStudy)."""

    @property
    def study_id(self) -> str: ...
    @property
    def sites(self) -> tuple[str, ...]: ...
    @property
    def epsilon(self) -> float: ...


def profile_query(study: StudyScope) -> QuerySpec:
    return QuerySpec(
        id=f"{study.study_id}-profils",
        title="Emploi à six mois par profil (modèle attendu)",
        purpose=PURPOSE,
        sites=study.sites,
        epsilon=study.epsilon * SHARES["profile"],
        group_by=PROFILE_FIELDS,
        measures=(
            Measure(name="effectif", kind="count"),
            Measure(name="taux_emploi_6m", kind="share", field="employed_6m"),
        ),
    )


def outcome_query(
    study: QueryStudy, model: ProfileModel, group_by: tuple[str, ...], share: float, durable: bool
) -> QuerySpec:
    measures = [
        Measure(name="effectif", kind="count"),
        Measure(name="taux_emploi_6m", kind="share", field="employed_6m"),
    ]
    if durable:
        measures.append(Measure(name="taux_emploi_durable", kind="share", field="durable_employment"))
    measures.append(Measure(name="taux_attendu", kind="expected_share", model=model))
    return QuerySpec(
        id=f"{study.study_id}-{'-'.join(group_by)}",
        title="Emploi à six mois : observé, attendu, valeur ajoutée",
        purpose=PURPOSE,
        sites=study.sites,
        epsilon=study.epsilon * share,
        group_by=group_by,
        measures=tuple(measures),
    )


def fit_profile_model(spec: QuerySpec, total: Combined) -> ProfileModel:
    """Main-effects logistic regression on the noisy profile table (counts clipped at zero)."""
    plan = release_plan(spec)
    bins = np.clip(total.values["cells"], 0.0, None)  # columns: employed_6m = "0", "1"
    levels = {f: keysets.key_set_of(f).values() for f in spec.group_by}  # type: ignore[union-attr]
    columns = [(f, v) for f in spec.group_by for v in levels[f]]
    x = np.array(
        [[1.0 if cell[spec.group_by.index(f)] == v else 0.0 for f, v in columns] for cell in plan.cells]
    )
    features = np.vstack([x, x])
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(x))])
    weights = np.concatenate([bins[:, 0], bins[:, 1]])
    model = LogisticRegression(C=100.0, max_iter=2000)
    model.fit(features, labels, sample_weight=weights)
    coefficients: dict[str, dict[str, float]] = {f: {} for f in spec.group_by}
    for (f, v), coefficient in zip(columns, model.coef_[0], strict=True):
        coefficients[f][v] = float(coefficient)
    return ProfileModel(intercept=float(model.intercept_[0]), coefficients=coefficients)


def value_added_rows(spec: QuerySpec, total: Combined, min_cell_size: int) -> list[dict[str, object]]:
    """observed − expected per released cell: (employed − Σ expected) / count, noise of both."""
    plan = release_plan(spec)
    position = plan.categorical.index("employed_6m")
    employed = np.array([c[position] == "1" for c in plan.categories], dtype=float)
    std_cells, std_expected = total.stds["cells"], total.stds["sum:taux_attendu"]
    rows: list[dict[str, object]] = []
    for i, cell in enumerate(plan.cells):
        group = dict(zip(spec.group_by, cell, strict=True))
        if is_suppressed(cell_count(total, plan, i), min_cell_size):
            rows.append(
                {
                    "group": group,
                    "measure": "valeur_ajoutee",
                    "value": None,
                    "ci_low": None,
                    "ci_high": None,
                    "suppressed": True,
                }
            )
            continue
        bins = total.values["cells"][i]
        x = np.concatenate([bins, [total.values["sum:taux_attendu"][i, 0]]])
        stds = np.concatenate([np.full(len(bins), std_cells), [std_expected]])
        numerator = np.concatenate([employed, [-1.0]])
        denominator = np.concatenate([np.ones(len(bins)), [0.0]])
        value, low, high = (
            float(np.clip(v, -1.0, 1.0)) for v in linear_ratio(x, stds, numerator, denominator, LEVEL)
        )
        ok = all(math.isfinite(v) for v in (value, low, high))
        rows.append(
            {
                "group": group,
                "measure": "valeur_ajoutee",
                "value": value if ok else None,
                "ci_low": low if ok else None,
                "ci_high": high if ok else None,
                "suppressed": False,
            }
        )
    return rows


def run_usecase3(  # type: ignore[no-untyped-def]
    ask, study: QueryStudy
) -> tuple[list[dict[str, object]], dict[str, Exchange], ProfileModel | None]:
    """The releases of use case 3; ``ask(request) -> Exchange`` sends one to every site.

    The domain × zone table is asked in two releases — the outcome histogram (counts and observed
    shares) and the sum of expected probabilities — so that each gets its own share of ε: the
    observed shares, the measure buyers read first, get the larger one.
    """
    exchanges: dict[str, Exchange] = {}
    profile = profile_query(study)
    exchanges["profile"] = ask(QueryRequest("profile", profile, SHARES["profile"]))
    if not exchanges["profile"].answers:
        return [], exchanges, None
    model = fit_profile_model(profile, Combined.of(exchanges["profile"].answers.values()))
    rows: list[dict[str, object]] = []
    domain_zone = outcome_query(
        study, model, ("training_domain", "zone_emploi"), SHARES["domain_zone"], False
    )
    observed = domain_zone.model_copy(update={"measures": domain_zone.measures[:-1]})
    expected = domain_zone.model_copy(update={"measures": domain_zone.measures[-1:]})
    provider = outcome_query(study, model, ("provider",), SHARES["provider"], True)
    for release, spec in (
        ("domain_zone", observed),
        ("domain_zone_expected", expected),
        ("provider", provider),
    ):
        exchanges[release] = ask(QueryRequest(release, spec, SHARES[release]))
    tables: list[tuple[QuerySpec, Combined]] = []
    if exchanges["domain_zone"].answers and exchanges["domain_zone_expected"].answers:
        counts = Combined.of(exchanges["domain_zone"].answers.values())
        sums = Combined.of(exchanges["domain_zone_expected"].answers.values())
        total = Combined({**counts.values, **sums.values}, {**counts.stds, **sums.stds})
        margin, by_domain, _ = total.margin(domain_zone, ("training_domain",))  # post-processing
        tables += [(domain_zone, total), (by_domain, margin)]
    if exchanges["provider"].answers:
        tables.append((provider, Combined.of(exchanges["provider"].answers.values())))
    for table_spec, table_total in tables:
        for row in combine_totals(table_spec, table_total, study.min_cell_size) + value_added_rows(
            table_spec, table_total, study.min_cell_size
        ):
            rows.append({**row, "table": "-".join(table_spec.group_by)})
    return rows, exchanges, model
