"""The study report a Region data officer reads (issue 12, items 3 and 9): French, a glossary, names
beside codes, a notice on synthetic data, data errors told from refusals, nothing that breaks a table."""

from __future__ import annotations

import os

import pytest
from flwr.app import Error, Message, Metadata

from coordinator.journal import StudyJournal
from coordinator.report import build_report
from coordinator.report_markdown import render_markdown
from coordinator.study_config import StudyConfig
from node_agent.declined import NodeDataError, NodeDeclined

SITES = ("apec", "france_travail", "missions_locales")


@pytest.fixture(autouse=True)
def _reference_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2DDE_REFERENCE_DATA", os.environ.get("R2DDE_REFERENCE_DATA", "/work/shared/data"))


def _reply(error: Error) -> Message:
    """A node's error reply as the ServerApp receives it."""
    metadata = Metadata(
        run_id=1,
        message_id="reply",
        src_node_id=2,
        dst_node_id=0,
        reply_to_message_id="instruction",
        group_id="1",
        created_at=0.0,
        ttl=60.0,
        message_type="train",
    )
    return Message(metadata=metadata, error=error)


def _report(**extra: object) -> dict[str, object]:
    journal = StudyJournal(SITES)
    bad_file = NodeDataError(
        "data.schema",
        "france_travail/parcours.csv, line 7, field 'birth_year': '1890' is outside 1940..2010",
        public="1 problem(s) in france_travail/parcours.csv: line 7, field 'birth_year' (rule range)",
    )
    refusal = NodeDeclined("site.purpose_refused", "purpose | not accepted\nby APEC <policy>")
    journal.record_train(
        1, [_reply(bad_file.decline("france_travail").to_error()), _reply(refusal.decline("apec").to_error())]
    )
    report = build_report(
        StudyConfig(study_id="s1", task="employment_outcome", sites=SITES),
        journal,
        status="aborted",
        reason="fewer than 2 sites trained in round 1",
        rounds_completed=1,
        round_metrics={},
        wall_seconds=2.0,
        feature_names=[],
        explanations={
            "reference_profile": {"zone_emploi": "0053", "rome_target": "M1607"},
            "reference_probability": 0.5,
            "factors": {"zone_emploi": {"0053": 0.5, "9312": 0.6}},
            "factors_by_influence": ["zone_emploi"],
        },
    )
    report.update(extra)
    return report


def test_a_data_error_is_not_reported_as_a_refusal() -> None:
    sites = _report()["sites"]
    assert sites["france_travail"]["status"] == "data error"
    assert sites["france_travail"]["declined"] == []
    assert "line 7" in sites["france_travail"]["data_errors"][0]
    assert sites["apec"]["status"] == "declined"


def test_the_reason_sent_to_the_region_holds_no_cell_value_and_no_local_path() -> None:
    refusal = NodeDeclined("node.keys", "cannot read the node's keys in /srv/partner/keys/node.key: denied")
    reason = refusal.decline("apec").to_error().reason
    assert "/srv/partner" not in reason and "node.key" in reason
    assert "1890" not in render_markdown(_report())


def test_text_from_a_node_cannot_break_the_markdown_table() -> None:
    markdown = render_markdown(_report())
    rows = [line for line in markdown.splitlines() if line.startswith("| APEC")]
    assert len(rows) == 1, markdown  # the newline in the reason did not split the row
    header = next(line for line in markdown.splitlines() if line.startswith("| partenaire"))
    assert rows[0].replace("\\|", "").count("|") == header.count("|")
    assert "<policy>" not in markdown


def test_the_report_is_in_french_with_a_glossary_and_names_beside_codes() -> None:
    markdown = render_markdown(_report())
    assert "Statut : **interrompue**" in markdown and "erreur de données" in markdown
    assert "## Glossaire" in markdown
    for term in ("AUC", "ε (epsilon)", "δ (delta)"):
        assert f"**{term}**" in markdown
    assert "0053 (Avignon)" in markdown
    assert "APEC — Centre Provence-Alpes-Côte d'Azur (apec)" in markdown
    assert "Status:" not in markdown and "Sites and privacy" not in markdown


def test_the_report_says_when_the_data_are_synthetic() -> None:
    synthetic = render_markdown(_report(data={"synthetic": True, "description": "Partenaires simulés."}))
    assert "Données synthétiques" in synthetic
    assert "Données synthétiques" not in render_markdown(_report(data={"synthetic": False}))
