"""Combining sites: suppression decided on noisy counts, 95 % intervals that cover, and the
analyst's query file refused with the rule and the line at fault."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.analytics import Combined, combine_totals
from coordinator.query_file import QueryFileError, read_query_file, refusal_from_broker
from policies.decide import decide
from policies.loader import load_purposes, load_site_policies
from policies.models import StudyRequest
from tasks.analytics import Measure, QueryAnswer, QuerySpec, release_plan

SPEC = QuerySpec(
    id="t",
    purpose="commande_publique_formation",
    sites=("carif_oref", "france_travail"),
    epsilon=1.0,
    group_by=("sex",),
    measures=(Measure(name="n", kind="count"), Measure(name="taux", kind="share", field="employed_6m")),
)


def _answers(true_cells: np.ndarray, std: float, rng: np.random.Generator) -> list[QueryAnswer]:
    """Two sites, each with half the people, each adding its own noise (as nodes do)."""
    out = []
    for site in ("carif_oref", "france_travail"):
        noisy = true_cells / 2 + rng.normal(0, std, size=true_cells.shape)
        out.append(QueryAnswer(site, "r", {"cells": noisy.tolist()}, {"cells": std}, 1.0, 1e-6, std, 1))
    return out


def test_a_cell_under_the_minimum_is_almost_never_released_and_large_ones_are():
    rng = np.random.default_rng(0)
    true_cells = np.array([[2.0, 4.0], [300.0, 500.0]])  # F: 6 people, M: 800
    released_small = 0
    for _ in range(2000):
        rows = combine_totals(SPEC, Combined.of(_answers(true_cells, 5.0, rng)), 11)
        released_small += not next(r for r in rows if r["group"] == {"sex": "F"})["suppressed"]
        assert not next(r for r in rows if r["group"] == {"sex": "M"})["suppressed"]
    assert released_small <= 2  # z = 3.72 one-sided: 0.01 % expected
    suppressed = next(r for r in rows if r["group"] == {"sex": "F"})
    assert suppressed["value"] is None and suppressed["ci_low"] is None


def test_intervals_cover_the_true_share_and_count_about_95_percent():
    rng = np.random.default_rng(1)
    true_cells = np.array([[120.0, 180.0], [400.0, 100.0]])
    truth = {("F", "n"): 300, ("F", "taux"): 0.6, ("M", "n"): 500, ("M", "taux"): 0.2}
    hits = {k: 0 for k in truth}
    reps = 2000
    for _ in range(reps):
        for row in combine_totals(SPEC, Combined.of(_answers(true_cells, 8.0, rng)), 11):
            key = (row["group"]["sex"], row["measure"])
            hits[key] += row["ci_low"] <= truth[key] <= row["ci_high"]
    for key, hit in hits.items():
        assert 0.93 <= hit / reps <= 0.97, (key, hit / reps)


def test_release_plan_counts_come_free_with_shares():
    plan = release_plan(SPEC)
    assert [c.name for c in plan.components] == ["cells"]
    assert plan.categories == (("0",), ("1",))


GOOD = """\
id: q1
purpose: commande_publique_formation
sites: [carif_oref, france_travail]
epsilon: 0.5
group_by: [training_domain, zone_emploi]
measures:
  - {name: n, kind: count}
  - {name: taux, kind: share, field: employed_6m}
  - {name: heures, kind: mean, field: duration_hours, clamp: [0, 1500]}
"""


def _refused(tmp_path, text: str) -> QueryFileError:
    path = tmp_path / "q.yaml"
    path.write_text(text)
    with pytest.raises(QueryFileError) as refused:
        read_query_file(path)
    return refused.value


def test_a_good_file_is_accepted(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(GOOD)
    assert read_query_file(path).spec.group_by == ("training_domain", "zone_emploi")


@pytest.mark.parametrize(
    ("old", "new", "rule", "line"),
    [
        ("sites: [carif_oref, france_travail]", "sites: [carif_oref, apec]", "query.field_granted", 5),
        (
            "  - {name: heures, kind: mean, field: duration_hours, clamp: [0, 1500]}",
            "  - {name: heures, kind: sum, field: duration_hours}",
            "query.clamp_required",
            9,
        ),
        (
            "group_by: [training_domain, zone_emploi]",
            "group_by: [training_domain, duration_hours]",
            "query.group_key_public",
            5,
        ),
        (
            "group_by: [training_domain, zone_emploi]",
            "group_by: [training_domain, nir]",
            "query.field_unknown",
            5,
        ),
        ("  - {name: n, kind: count}", "  - {name: n, kind: count", "query.yaml", 8),
        ("epsilon: 0.5", "epsilon: -1", "query.schema", 4),
    ],
)
def test_bad_files_are_refused_with_rule_and_line(tmp_path, old, new, rule, line):
    refused = _refused(tmp_path, GOOD.replace(old, new))
    assert (refused.problems[0].rule, refused.problems[0].line) == (rule, line), refused.problems


def test_a_cost_past_the_remaining_budget_is_pinned_to_the_epsilon_line(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(GOOD)
    query = read_query_file(path)
    request = StudyRequest(
        study_id="s", purpose_id=query.spec.purpose, task="training_outcome_stats", dataset="formations",
        fields=query.spec.fields(), sites=query.spec.sites, rounds=1, target_epsilon=query.spec.epsilon,
        delta=1e-7, coordinator="coordinator", requested_by="coordinator",
    )  # fmt: skip
    purpose = load_purposes()[query.spec.purpose]
    decision = decide(request, purpose, load_site_policies(), spent={"carif_oref": 2.8})
    assert not decision.allowed
    refused = refusal_from_broker(query, decision.reasons)
    assert [(p.rule, p.line) for p in refused.problems] == [("budget.remaining", 4)]


def test_quantiles_read_from_the_noisy_histogram_cover_the_true_median():
    spec = QuerySpec(
        id="q",
        purpose="commande_publique_formation",
        sites=("carif_oref",),
        epsilon=1.0,
        measures=(
            Measure(name="n", kind="count"),
            Measure(name="delai", kind="quantile", field="months_to_employment", clamp=(0, 24), bins=24),
        ),
    )
    rng = np.random.default_rng(3)
    values = rng.exponential(6.0, size=3000).clip(0, 24)  # true median 6·ln 2 ≈ 4.16 months
    counts = np.histogram(values, bins=24, range=(0, 24))[0].astype(float)
    true_median = float(np.median(values))
    hits = 0
    for _ in range(300):
        noisy = counts + rng.normal(0, 6.0, size=24)
        answer = QueryAnswer(
            "carif_oref",
            "r",
            {"cells": [[3000 + rng.normal(0, 6.0)]], "bins:delai": [noisy.tolist()]},
            {"cells": 6.0, "bins:delai": 6.0},
            1.0,
            1e-6,
            6.0,
            2,
        )
        row = next(r for r in combine_totals(spec, Combined.of([answer]), 11) if r["measure"] == "delai[q50]")
        assert abs(row["value"] - true_median) < 0.5
        hits += row["ci_low"] <= true_median <= row["ci_high"]
    assert hits / 300 >= 0.9
