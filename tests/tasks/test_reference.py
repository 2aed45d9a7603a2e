"""Reference lookups against the raw public files (read here independently with the csv module)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from tasks import reference

DATA = reference.reference_data_dir()


def _rows(relative: str, delimiter: str = ",") -> list[dict[str, str]]:
    with (DATA / relative).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


@pytest.fixture(scope="module")
def raw_tension() -> dict[tuple[str, str], float]:
    return {
        (r["ROME"], r["cbassin"]): (float(r["ind_tension_d"]) - 1) / 4
        for r in _rows("labour_market/tension_bassin_rome_2021.csv", ";")
    }


@pytest.fixture(scope="module")
def raw_rome() -> dict[str, dict[str, str]]:
    return {r["code_rome"]: r for r in _rows("rome/unix_referentiel_code_rome_v460_utf8.csv")}


def test_reference_dir_follows_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(reference.ENV_VAR, str(tmp_path))
    assert reference.reference_data_dir() == tmp_path


def test_missing_reference_dir_is_a_clear_error_naming_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reference.ENV_VAR, "/nonexistent/r2dde-data")
    with pytest.raises(reference.ReferenceDataError, match="/nonexistent/r2dde-data"):
        reference.reference_data_dir()


def test_paca_has_22_zones_d_emploi_with_their_labels() -> None:
    zones = reference.zones_emploi_paca()
    assert len(zones) == 22
    labels = dict(zip(zones["ze2020"], zones["libze2020"], strict=True))
    assert labels["9312"] == "Marseille" and labels["9315"] == "Nice"
    assert {"0052", "0053", "0055", "0064"} <= set(labels)  # cross-regional zones
    assert zones["n_communes"].sum() == len(_rows("geo/insee_ze2020_communes_paca.csv"))


def test_commune_lookups_match_the_insee_and_bmo_tables() -> None:
    ze = {r["codgeo"]: r["ze2020"] for r in _rows("geo/insee_ze2020_communes_paca.csv")}
    bassin = {r["CODE_COMMUNE_INSEE"]: r["BE19"] for r in _rows("geo/bassins_bmo_communes_paca.csv")}
    for code in ("13055", "06088", "84007", "05061", "04070"):
        assert reference.commune_to_zone(code) == ze[code]
        assert reference.commune_to_bassin(code) == bassin[code]
    assert reference.commune_to_bassin("13055") == "9306"


def test_unknown_commune_is_named_in_the_error() -> None:
    with pytest.raises(reference.UnknownCodeError, match="75056"):
        reference.commune_to_zone("75056")


def test_rome_lookups_follow_the_rome_4_referential(raw_rome: dict[str, dict[str, str]]) -> None:
    assert "informatique" in reference.rome_label("M1805").lower()
    assert reference.rome_parent("A1102") == raw_rome["A1102"]["code_rome_parent"] == "A1101"
    assert reference.rome_grand_domaine("K2204") == "K"
    executive = next(c for c, r in raw_rome.items() if r["emploi_cadre"] == "O")
    not_executive = next(c for c, r in raw_rome.items() if r["emploi_cadre"] == "N")
    unassessed = next(c for c, r in raw_rome.items() if r["emploi_cadre"] == "")
    assert reference.rome_is_executive(executive) is True
    assert reference.rome_is_executive(not_executive) is False
    assert reference.rome_is_executive(unassessed) is False


def test_unknown_rome_code_is_a_clear_error() -> None:
    with pytest.raises(reference.UnknownCodeError, match="Z9999"):
        reference.rome_label("Z9999")
    with pytest.raises(reference.UnknownCodeError, match="Z9999"):
        reference.tension_index("9312", "Z9999")


def test_tension_in_a_single_bassin_zone_is_that_bassin_s_published_class(
    raw_tension: dict[tuple[str, str], float], raw_rome: dict[str, dict[str, str]]
) -> None:
    bassins_by_zone: dict[str, set[str]] = defaultdict(set)
    bassin_of = {r["CODE_COMMUNE_INSEE"]: r["BE19"] for r in _rows("geo/bassins_bmo_communes_paca.csv")}
    for r in _rows("geo/insee_ze2020_communes_paca.csv"):
        bassins_by_zone[r["ze2020"]].add(bassin_of[r["codgeo"]])
    checked = 0
    for zone, bassins in sorted(bassins_by_zone.items()):
        if len(bassins) != 1:
            continue
        (bassin,) = bassins
        for code in ("G1803", "M1805", "K2204", "J1506", "N4101"):
            parent = raw_rome[code]["code_rome_parent"]
            if (parent, bassin) in raw_tension:
                lookup = reference.tension_lookup(zone, code)
                assert lookup.level == "bassin"
                assert lookup.value == pytest.approx(raw_tension[(parent, bassin)])
                checked += 1
    assert checked >= 3


def test_tension_falls_back_to_the_national_mean_then_the_overall_mean(
    raw_tension: dict[tuple[str, str], float], raw_rome: dict[str, dict[str, str]]
) -> None:
    published = {rome for rome, _ in raw_tension}
    paca = {rome for rome, b in raw_tension if b.startswith("93")}
    national_only = next(c for c, r in sorted(raw_rome.items()) if r["code_rome_parent"] in published - paca)
    parent = raw_rome[national_only]["code_rome_parent"]
    values = [t for (rome, _), t in raw_tension.items() if rome == parent]
    lookup = reference.tension_lookup("9312", national_only)
    assert lookup.level == "national"
    assert lookup.value == pytest.approx(sum(values) / len(values))

    unpublished = next(c for c, r in sorted(raw_rome.items()) if r["code_rome_parent"] not in published)
    overall = sum(raw_tension.values()) / len(raw_tension)
    lookup = reference.tension_lookup("9312", unpublished)
    assert lookup.level == "overall"
    assert lookup.value == pytest.approx(overall)


def test_tension_index_is_a_score_between_0_and_1_for_every_zone() -> None:
    zones = reference.zones_emploi_paca()["ze2020"]
    for zone in zones:
        for code in ("G1803", "M1805", "A1101", "K2204", "F1703"):
            assert 0.0 <= reference.tension_index(zone, code) <= 1.0


def test_bassin_tension_uses_the_bassin_s_own_row(raw_tension: dict[tuple[str, str], float]) -> None:
    assert reference.bassin_tension_index("9306", "M1805") == pytest.approx(raw_tension[("M1805", "9306")])
    with pytest.raises(reference.UnknownCodeError, match="0203"):
        reference.bassin_tension_index("0203", "M1805")  # a bassin outside PACA
