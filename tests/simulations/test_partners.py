"""The synthetic partners: schema, calibration on public data, overlaps, PII realism, ground truth, seeds."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from node_agent.sources import load_file
from simulations import identities, labour_market
from simulations.ground_truth import GROUND_TRUTH
from simulations.partners import DEFAULT_SITES, generate_partners
from tasks import reference
from tasks.schema import EDUCATION_LEVELS, PARCOURS_COLUMNS, validate_parcours

DATA = reference.reference_data_dir()


def _raw(relative: str) -> list[dict[str, str]]:
    with (DATA / relative).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _nir_key_ok(nir: str) -> bool:
    """The NIR key rule, written independently of the generator."""
    compact = nir.replace(" ", "")
    body = compact[:13].replace("2A", "19", 1) if compact[5:7] == "2A" else compact[:13]
    body = body.replace("2B", "18", 1) if compact[5:7] == "2B" else body
    return len(compact) == 15 and int(compact[13:]) == 97 - int(body) % 97


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    out = tmp_path_factory.mktemp("partners")
    paths = generate_partners(out, seed=42, people=6000)
    return out, {site: load_file(path, site, validate_parcours) for site, path in paths.items()}


@pytest.fixture(scope="module")
def truth(generated: tuple[Path, dict[str, pd.DataFrame]]) -> dict:
    return json.loads((generated[0] / "ground_truth.json").read_text())


def test_default_sites_write_valid_parcours_files(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    out, tables = generated
    assert set(tables) == set(DEFAULT_SITES)
    for site, table in tables.items():
        header = (out / site / "parcours.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == list(PARCOURS_COLUMNS)
        assert table["record_id"].is_unique
    assert sum(len(t) for t in tables.values()) > 6000  # people at two partners add records


def test_zone_shares_follow_the_commune_weights(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    people = pd.concat(generated[1].values())
    zone_of = {r["codgeo"]: r["ze2020"] for r in _raw("geo/insee_ze2020_communes_paca.csv")}
    observed = people["commune"].map(zone_of).value_counts(normalize=True)
    expected = labour_market.zone_weights()
    distance = 0.5 * (observed.reindex(expected.index, fill_value=0) - expected).abs().sum()
    assert distance < 0.05
    assert observed.get("9312", 0) > observed.get("9302", 0)  # Marseille far above Briançon


def test_commune_weights_are_bmo_projects_of_the_bassin_split_over_its_communes() -> None:
    projects: dict[str, float] = {}
    for r in _raw("labour_market/bmo_2024_paca_bassin_metier.csv"):
        value = labour_market.SECRET_CELL_VALUE if r["met"] == "*" else float(r["met"])
        projects[r["BE24"]] = projects.get(r["BE24"], 0.0) + value
    communes = reference.communes_paca()
    per_commune = communes["bassin"].map(projects) / communes.groupby("bassin")["bassin"].transform("size")
    expected = per_commune / per_commune.sum()
    assert np.allclose(labour_market.commune_weights().reindex(expected.index), expected, atol=2e-4)


def test_occupation_marginal_follows_bmo_weights(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    ft = generated[1]["france_travail"]
    weights = labour_market.occupation_weights()
    expected = weights.groupby(weights.index.str[0]).sum()
    observed = ft["rome_target"].str[0].value_counts(normalize=True).reindex(expected.index, fill_value=0)
    assert 0.5 * (observed - expected).abs().sum() < 0.04
    top = weights.idxmax()
    share, n = weights[top], len(ft)
    assert abs((ft["rome_target"] == top).mean() - share) < 4 * np.sqrt(share * (1 - share) / n)


def test_bmo_families_are_matched_to_their_fap_2009_counterparts() -> None:
    crosswalk = labour_market.fap2021_to_fap2009().set_index("fap2021")["fap2009"]
    expected = {"S1X40": "S1Z40", "T4X60": "T4Z60", "B1X34": "B2Z44", "V0X60": "V0Z60", "P0X60": "P0Z60"}
    assert {code: crosswalk[code] for code in expected} == expected


def test_bmo_families_reach_rome_fiches_of_the_right_domain() -> None:
    crosswalk = labour_market.fap2021_to_rome4()
    labels = reference.rome_referential()["libelle_rome"]
    cooks = crosswalk[crosswalk["fap2021"] == "S1X40"]  # Cuisiniers
    assert cooks["share"].sum() == pytest.approx(1.0)
    assert any("cuisin" in labels[c].lower() for c in cooks["rome4"])
    assert labour_market.unmapped_project_share() < 0.01


def test_apec_targets_executive_jobs_with_higher_education(
    generated: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    apec = generated[1]["apec"]
    executive = {
        r["code_rome"]
        for r in _raw("rome/unix_referentiel_code_rome_v460_utf8.csv")
        if r["emploi_cadre"] == "O"
    }
    assert apec["rome_target"].isin(executive).all()
    assert apec["education_level"].isin(["bac+3_4", "bac+5"]).mean() > 0.85


def test_ages_follow_each_partner_s_public(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    tables = generated[1]
    ml_age = 2025 - tables["missions_locales"]["birth_year"]
    ft_age = 2025 - tables["france_travail"]["birth_year"]
    assert ml_age.between(16, 25).all() and ml_age.min() == 16
    assert ft_age.between(18, 64).all() and ft_age.max() > 55


def test_some_people_are_registered_at_two_partners_consistently(
    generated: tuple[Path, dict[str, pd.DataFrame]], truth: dict
) -> None:
    tables = {s: t.assign(nir_key=t["nir"].str.replace(" ", "")) for s, t in generated[1].items()}
    ft = tables["france_travail"].set_index("nir_key")
    for site in ("apec", "missions_locales"):
        other = tables[site].set_index("nir_key")
        shared = ft.index.intersection(other.index)
        assert len(shared) == truth["overlaps"][f"france_travail|{site}"]
        assert 0.05 <= len(shared) / len(other) <= 0.10
        for column in ("birth_year", "sex", "first_name", "commune", "rome_target", "employed_6m"):
            assert (ft.loc[shared, column] == other.loc[shared, column]).all(), column
        assert (ft.loc[shared, "last_name"].str.upper() == other.loc[shared, "last_name"].str.upper()).all()
        assert (ft.loc[shared, "record_id"] != other.loc[shared, "record_id"]).all()
        known = other.loc[shared, "ft_id"] != ""
        assert 0 < known.sum() < len(shared)  # some partners recorded the France Travail id, not all
        assert (other.loc[shared, "ft_id"][known] == ft.loc[shared, "ft_id"][known]).all()
    assert (tables["france_travail"]["ft_id"] != "").all()
    assert tables["apec"]["nir_key"].isin(tables["missions_locales"]["nir_key"]).sum() == 0


def test_nir_keys_are_valid_and_consistent_with_sex_and_birth_year(
    generated: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    people = pd.concat(generated[1].values())
    compact = people["nir"].str.replace(" ", "")
    assert compact.map(_nir_key_ok).all()
    assert (compact.str[0] == people["sex"].map({"M": "1", "F": "2"})).all()
    assert (compact.str[1:3] == (people["birth_year"] % 100).map("{:02d}".format)).all()
    assert compact.str[5:7].isin(["2A", "2B"]).any() or compact.str[5:7].eq("99").any()


def test_identities_are_varied_and_realistic(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    people = pd.concat(generated[1].values())
    female_names = {
        r["prenom"] for r in _raw("names/insee_prenoms_1900_2022_par_sexe_decennie.csv") if r["sexe"] == "2"
    }
    women = people[people["sex"] == "F"]
    assert women["first_name"].str.upper().isin(female_names).mean() > 0.99
    phones = people.loc[people["phone"] != "", "phone"]
    shapes = phones.str.replace(r"\d", "9", regex=True).value_counts()
    assert len(shapes) >= 5 and shapes.max() / len(phones) < 0.5
    providers = people.loc[people["email"] != "", "email"].str.split("@").str[1]
    assert providers.nunique() >= 8
    assert people["address"].str.contains(r"\b\d{5}\b").all()
    assert people["last_name"].nunique() > 2000


def test_counselor_notes_mix_domain_content_and_varied_pii(
    generated: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    people = pd.concat(generated[1].values()).reset_index(drop=True)
    notes = people["counselor_note"]
    has_name = [
        last.upper() in note.upper() or first in note
        for first, last, note in zip(people["first_name"], people["last_name"], notes, strict=True)
    ]
    assert np.mean(has_name) > 0.95
    assert notes.str.contains(r"[\w.-]+@[\w-]+\.\w+").mean() > 0.1
    assert notes.str.contains(r"(?:\+33|0)\s?\d(?:[ .-]?\d{2}){4}").mean() > 0.1
    assert notes.str.contains(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b").mean() > 0.05
    zone_named = [
        z in n
        for z, n in zip(people["commune"].map(reference.communes_paca()["zone_label"]), notes, strict=True)
    ]
    assert np.mean(zone_named) > 0.5


def test_outcome_follows_the_ground_truth_model(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    people = pd.concat(generated[1].values()).reset_index(drop=True)
    pairs = zip(
        people["commune"].map(reference.communes_paca()["bassin"]), people["rome_target"], strict=True
    )
    tension = np.array([reference.bassin_tension_index(b, r) for b, r in pairs])
    age = GROUND_TRUTH.reference_year - people["birth_year"].to_numpy()
    features = np.column_stack(
        [
            tension - 0.5,
            people["education_level"].map({v: i for i, v in enumerate(EDUCATION_LEVELS)}),
            np.minimum(people["months_unemployed"], GROUND_TRUTH.months_unemployed_cap),
            np.maximum(age - 45, 0),
            age < 26,
            people["driving_licence"],
            np.minimum(people["mobility_km"], GROUND_TRUTH.mobility_cap_km),
            people["training_followed"],
            people["rome_target"] == people["rome_previous"],
            people["sex"] == "F",
        ]
    ).astype(float)
    model = LogisticRegression(C=1e6, max_iter=2000).fit(features, people["employed_6m"])
    tension_coef, licence_coef, months_coef = model.coef_[0][0], model.coef_[0][5], model.coef_[0][2]
    assert abs(tension_coef - GROUND_TRUTH.tension) < 0.6
    assert abs(licence_coef - GROUND_TRUTH.driving_licence) < 0.25
    assert abs(months_coef - GROUND_TRUTH.months_unemployed) < 0.015
    high, low = people["employed_6m"][tension >= 0.75].mean(), people["employed_6m"][tension <= 0.25].mean()
    assert high > low + 0.1


def test_months_to_employment_agree_with_the_label(generated: tuple[Path, dict[str, pd.DataFrame]]) -> None:
    people = pd.concat(generated[1].values())
    months = people["months_to_employment"]
    employed = people["employed_6m"] == 1
    assert (months[employed] <= 6).all() and months[employed].notna().all()
    later = months[~employed]
    assert ((later > 6) & (later <= 24) | later.isna()).all()
    assert later.isna().any() and later.notna().any()


def test_ground_truth_file_records_the_model_seed_and_counts(
    generated: tuple[Path, dict[str, pd.DataFrame]], truth: dict
) -> None:
    assert truth["seed"] == 42 and truth["people"] == 6000
    assert truth["outcome_model"]["coefficients"]["tension"] == GROUND_TRUTH.tension
    for site, table in generated[1].items():
        assert truth["sites"][site]["records"] == len(table)
        assert truth["sites"][site]["employed_6m_rate"] == pytest.approx(
            table["employed_6m"].mean(), abs=1e-4
        )


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    def snapshot(folder: Path, seed: int) -> dict[str, bytes]:
        generate_partners(folder, seed=seed, people=400)
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    first, again, other = (
        snapshot(tmp_path / "a", 7),
        snapshot(tmp_path / "b", 7),
        snapshot(tmp_path / "c", 8),
    )
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_unknown_site_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("pole_emploi")):
        generate_partners(tmp_path, sites=("france_travail", "pole_emploi"))


def test_optional_training_partner_is_training_heavy(tmp_path: Path) -> None:
    paths = generate_partners(tmp_path, seed=1, people=800, sites=("france_travail", "carif_oref"))
    carif = load_file(paths["carif_oref"], "carif_oref", validate_parcours)
    assert carif["training_followed"].mean() > 0.8


def test_corsican_birth_places_get_keys_computed_with_19_and_18() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    nirs = identities.sample_nirs(rng, sex, rng.integers(1960, 2008, size=n), rng.integers(1, 13, size=n))
    corsica = [nir for nir in nirs if nir[5:7] in ("2A", "2B")]
    assert corsica and all(_nir_key_ok(nir) for nir in corsica)
    abroad = [nir for nir in nirs if nir[5:7] == "99"]
    assert abroad and all(_nir_key_ok(nir) for nir in abroad)
    assert not identities.nir_is_valid(corsica[0][:13] + f"{(int(corsica[0][13:]) % 97) + 1:02d}")
