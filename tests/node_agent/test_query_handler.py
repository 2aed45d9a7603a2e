"""The node's answer to a statistics query: noise at the stated σ, clamping, one person once per
site, and refusals before any reservation or computation (the coordinator as adversary)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import ConfigRecord, Context, RecordDict

from contracts.instructions import StudyInstructions
from node_agent.declined import NodeDeclined
from node_agent.gate import StudyGate, StudyTerms
from node_agent.query_handler import _prepare, answer_query
from node_agent.settings import NodeSettings
from node_agent.sources import load_file
from tasks import formations
from tasks.analytics import Measure, QueryAnswer, QueryRequest, QuerySpec, release_plan, true_components

GRANTED = ("training_domain", "zone_emploi", "employed_6m", "duration_hours", "age_band")


class RecordingGate(StudyGate):
    """A broker-less gate for these tests: admits with fixed terms, records every reservation."""

    def __init__(self, fields: tuple[str, ...] = GRANTED) -> None:
        self.fields = fields
        self.reserved: list[Mapping[str, object]] = []
        self.released: list[str] = []
        self.committed: list[Mapping[str, object]] = []

    def admit(self, instructions, spec):  # type: ignore[no-untyped-def]
        return StudyTerms(
            1.0, 1e-6, formations.DATASET, "commande_publique_formation", "public_interest", self.fields
        )

    def still_granted(self) -> None:
        return None

    def excluded(self, terms):  # type: ignore[no-untyped-def]
        return frozenset()

    def consented(self, terms):  # type: ignore[no-untyped-def]
        return None

    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        self.reserved.append(dict(mechanism, request_id=request_id, examples=examples))
        return request_id

    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        self.committed.append(mechanism)

    def release(self, reservation_id: str) -> None:
        self.released.append(reservation_id)

    def report(self, counts: Mapping[str, object]) -> None:
        return None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> NodeSettings:
    folder = tmp_path_factory.mktemp("site")
    rows = []
    rng = np.random.default_rng(1)
    for i in range(400):
        employed = int(rng.random() < 0.6)
        rows.append(
            {
                "record_id": f"CO{i:05d}",
                "nir": "",
                "sex": "F",
                "age_band": "26-35",
                "education_level": "bac",
                "months_out_of_work": 3,
                "training_domain": "nsf330" if i % 2 else "nsf312",
                "certification_level": "4",
                "provider": "of-330-13-1",
                "zone_emploi": "9312",
                "departement": "13",
                "funding": "region",
                "training_end": "2024-03-01",
                "duration_hours": 100 + 10 * (i % 300),
                "employed_6m": employed,
                "durable_employment": 0,
                "months_to_employment": 2.0 if employed else "",
            }
        )
    frame = pd.DataFrame(rows)
    from simulations.identities import sample_nirs

    frame["nir"] = sample_nirs(rng, np.array(["F"] * 400), np.full(400, 1990), np.full(400, 5))
    frame.loc[399, ["nir", "training_end"]] = [frame.loc[0, "nir"], "2024-09-01"]  # a second training
    frame.to_csv(folder / formations.FILE_NAME, index=False)
    keys = folder / "keys"
    keys.mkdir()
    (keys / "linkage.key").write_text("ab" * 32)
    os.chmod(keys / "linkage.key", 0o600)
    return NodeSettings(site="carif_oref", data_dir=folder, keys_dir=keys)


def _spec(**update: object) -> QuerySpec:
    base = QuerySpec(
        id="t",
        purpose="commande_publique_formation",
        sites=("carif_oref",),
        epsilon=1.0,
        group_by=("training_domain",),
        measures=(
            Measure(name="n", kind="count"),
            Measure(name="taux", kind="share", field="employed_6m"),
            Measure(name="heures", kind="mean", field="duration_hours", clamp=(0, 1000)),
        ),
    )
    return base.model_copy(update=update)


def _ask(settings: NodeSettings, gate: RecordingGate, spec: QuerySpec, study: str = "s1") -> QueryAnswer:
    instructions = StudyInstructions(study, formations.TASK, 1, 1, 1, 0.0, 1.0, 1.0, 1e-6, 0)
    content = RecordDict(
        {
            "config": ConfigRecord(instructions.to_config()),
            "query": ConfigRecord(QueryRequest("r", spec, 1.0).to_config()),
        }
    )
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    return QueryAnswer.from_config(answer_query(content, context, settings, lambda _: gate)["answer"])


def test_noise_matches_the_stated_sigma_and_is_reserved_before_and_committed_after(site):
    spec = _spec()
    plan = release_plan(spec)
    gate = RecordingGate()
    answers = [_ask(site, gate, spec, "noise") for _ in range(100)]
    frame = load_file(site.data_dir / formations.FILE_NAME, "carif_oref", formations.validate_formations)
    frame = frame.sort_values("training_end").drop_duplicates("nir", keep="last")
    exact = true_components(frame, spec, plan)
    for name in ("cells", "sum:heures"):
        noise = np.array([a.component(name) - exact[name] for a in answers]).ravel()
        stated = answers[0].noise_std[name]
        assert abs(noise.std() / stated - 1) < 0.1, name
        assert abs(noise.mean()) < 4 * stated / math.sqrt(noise.size)
    # σ is relative to the sensitivity: the sum's noise is the clamp bound (1000) times the count's.
    assert answers[0].noise_std["sum:heures"] == pytest.approx(1000 * answers[0].noise_std["cells"])
    assert len(gate.reserved) == len(gate.committed) == 100
    assert len({r["request_id"] for r in gate.reserved}) == 100  # a fresh request id per release
    assert gate.reserved[0]["kind"] == "gaussian" and gate.reserved[0]["count"] == len(plan.components)
    assert answers[0].epsilon == pytest.approx(1.0, abs=0.01)


def test_the_ledger_hears_no_count_of_the_site(site, tmp_path):
    """Whoever reads the broker's books (its database, an audit export) must not learn the site's
    size from a query's reservation: one person more or less changes nothing the ledger records."""
    smaller = tmp_path / "smaller"
    shutil.copytree(site.data_dir, smaller)
    rows = (smaller / formations.FILE_NAME).read_text(encoding="utf-8").splitlines(keepends=True)
    (smaller / formations.FILE_NAME).write_text("".join(rows[:-2] + rows[-1:]), encoding="utf-8")
    ledgers = []
    for study, folder in (("size-a", site.data_dir), ("size-b", smaller)):
        gate = RecordingGate()
        _ask(NodeSettings(site="carif_oref", data_dir=folder, keys_dir=site.keys_dir), gate, _spec(), study)
        ledgers.append([{k: v for k, v in r.items() if k != "request_id"} for r in gate.reserved])
    assert ledgers[0] == ledgers[1]


def test_one_person_counts_once_per_site_and_values_are_clamped(site):
    frame = load_file(site.data_dir / formations.FILE_NAME, "carif_oref", formations.validate_formations)
    spec = _spec()
    plan = release_plan(spec)
    gate = RecordingGate()
    # Exactly: the person with two trainings at this site is one record, their latest training.
    prepared = _prepare(site, gate.admit(None, spec), "once-exact")
    assert len(prepared) == 399
    # And in what leaves the node: the mean of 60 releases' summed cells is 399 within 4 σ of that mean
    # (the sum runs over every cell, each with its own noise: σ·√cells, not σ·√4 — that bound failed
    # one run in seven).
    answers = [_ask(site, gate, spec, "once") for _ in range(60)]
    counts = np.mean([a.component("cells").sum() for a in answers])
    cells = answers[0].component("cells").size
    assert abs(counts - 399) < 4 * answers[0].noise_std["cells"] * math.sqrt(cells) / math.sqrt(60)
    # Clamping, checked against a plain pandas computation: durations above 1000 h count as 1000.
    exact = true_components(frame, spec, plan)
    by_domain = frame.assign(h=frame["duration_hours"].clip(upper=1000)).groupby("training_domain")["h"].sum()
    row = plan.cells.index(("nsf330",))
    assert exact["sum:heures"][row, 0] == by_domain["nsf330"]
    assert frame["duration_hours"].max() > 1000


@pytest.mark.parametrize(
    ("spec_update", "rule"),
    [
        ({"group_by": ("provider",)}, "grant.fields"),  # a key the grant does not cover
        ({"measures": (Measure(name="s", kind="sum", field="duration_hours"),)}, "query.clamp_required"),
        ({"group_by": ("duration_hours",)}, "query.group_key_public"),
    ],
)
def test_a_query_outside_the_grant_is_refused_before_any_reservation(site, spec_update, rule):
    gate = RecordingGate()
    with pytest.raises(NodeDeclined) as declined:
        _ask(site, gate, _spec(**spec_update), f"refused-{rule}")
    assert declined.value.rule == rule
    assert gate.reserved == []


def test_reply_holds_noisy_values_only(site):
    answer = _ask(site, RecordingGate(), _spec(), "noisy-only")
    exact = true_components(
        load_file(site.data_dir / formations.FILE_NAME, "carif_oref", formations.validate_formations)
        .sort_values("training_end")
        .drop_duplicates("nir", keep="last"),
        _spec(),
        release_plan(_spec()),
    )
    assert not np.allclose(answer.component("cells"), exact["cells"])
    assert set(answer.values) == {"cells", "sum:heures"}
    assert Path(site.data_dir / formations.FILE_NAME).exists()


def test_the_coordinator_cannot_ask_for_more_than_the_grant_in_one_release(site):
    gate = RecordingGate()
    instructions = StudyInstructions("greedy", formations.TASK, 1, 1, 1, 0.0, 1.0, 1.0, 1e-6, 0)
    content = RecordDict(
        {
            "config": ConfigRecord(instructions.to_config()),
            "query": ConfigRecord(QueryRequest("r", _spec(), 4.0).to_config()),
        }
    )
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(NodeDeclined) as declined:
        answer_query(content, context, site, lambda _: gate)
    assert declined.value.rule == "query.budget_share"
    assert gate.reserved == []


def test_values_outside_the_public_key_sets_make_no_cell_and_any_model_stays_bounded():
    frame = pd.DataFrame(
        {
            "training_domain": ["nsf330", "nsf330", "nsf999"],
            "zone_emploi": ["9312", "0000", "9312"],
            "employed_6m": [1, 0, 1],
            "age_band": ["26-35", "26-35", "26-35"],
        }
    )
    spec = _spec(
        group_by=("training_domain", "zone_emploi"),
        measures=(
            Measure(name="n", kind="count"),
            Measure(
                name="attendu",
                kind="expected_share",
                # A coordinator trying to amplify one person's weight: probabilities stay in [0, 1].
                model={"intercept": 1e6, "coefficients": {"age_band": {"26-35": 1e9}}},
            ),
        ),
    )
    plan = release_plan(spec)
    exact = true_components(frame, spec, plan)
    assert ("nsf999", "9312") not in plan.cells and ("nsf330", "0000") not in plan.cells
    assert exact["cells"].sum() == 1  # only the record whose values are all public keys
    assert exact["sum:attendu"].max() <= 1.0
