"""Data minimization: what a study was not granted is dropped unread, free text above all."""

from __future__ import annotations

from parcours_factory import make_parcours

from anonymization.parcours import anonymize_parcours

GRANTED = ["linkage_pseudonym", "age_band", "sex", "zone_emploi", "rome_target", "employed_6m"]


def test_ungranted_columns_are_dropped_and_notes_are_never_scrubbed(linkage_key) -> None:
    raw = make_parcours(40, seed=3)
    frame, report = anonymize_parcours(
        raw, source="t.csv", linkage_key=linkage_key, study_id="s", fields=GRANTED
    )
    assert set(frame.columns) == {*GRANTED, "study_pseudonym"}
    summary = report.to_dict()
    assert "counselor_note" in summary["dropped_columns"] and "mobility_km" in summary["dropped_columns"]
    assert "departement" not in frame.columns  # a by-product of the commune generalization, not granted


def test_granted_notes_are_scrubbed(linkage_key, scrubber) -> None:
    raw = make_parcours(20, seed=4)
    frame, _ = anonymize_parcours(
        raw,
        source="t.csv",
        linkage_key=linkage_key,
        study_id="s",
        fields=[*GRANTED, "counselor_note"],
        scrubber=scrubber,
    )
    assert "counselor_note" in frame.columns
    names = set(raw["last_name"])
    notes = " ".join(frame["counselor_note"])
    assert "<NOM>" in notes and not [n for n in names if n in notes]
