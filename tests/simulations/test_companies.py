"""The company generator of use case 2 against the public data it claims to follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anonymization.checksums import siret_valid
from node_agent.sources import load_file
from simulations.companies import (
    COMPANY_TYPES,
    TRUTH_FILE,
    bmo_regional_rates,
    generate_companies,
    lbb_occupations_by_division,
)
from tasks.companies import as_read, company_view, domain_shares, validate_companies
from tasks.reference import naf_subclasses


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("companies")
    return root, generate_companies(root, seed=7, companies=1500, bad_rows=3)


def _valid(path: Path, site: str) -> pd.DataFrame:
    return validate_companies(load_file(path, site, as_read), str(path))[0]


def test_same_seed_same_bytes(generated: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    root, paths = generated
    again = generate_companies(tmp_path, seed=7, companies=1500, bad_rows=3)
    assert all(paths[s].read_bytes() == again[s].read_bytes() for s in paths)


def test_difficult_and_seasonal_shares_follow_bmo_paca(generated: tuple[Path, dict[str, Path]]) -> None:
    _, paths = generated
    rows = pd.concat([_valid(p, s) for s, p in paths.items()])
    projects = pd.to_numeric(rows["hiring_projects"]).sum()
    difficult = pd.to_numeric(rows["difficult_projects"]).sum() / projects
    seasonal = pd.to_numeric(rows["seasonal_projects"]).sum() / projects
    bmo_difficult, bmo_seasonal = bmo_regional_rates()
    assert bmo_difficult == pytest.approx(152012 / 246545, abs=0.02)  # BMO 2024 PACA, xmet / met
    assert difficult == pytest.approx(bmo_difficult, abs=0.08)
    assert seasonal == pytest.approx(bmo_seasonal, abs=0.1)


def test_occupations_sought_follow_la_bonne_boite_by_sector(generated: tuple[Path, dict[str, Path]]) -> None:
    _, paths = generated
    rows = _valid(paths["france_travail"], "france_travail")
    restaurants = rows[rows["naf"].str[:2] == "56"]
    shares = domain_shares(restaurants["rome_sought"].tolist()).mean(axis=0)
    lbb = lbb_occupations_by_division()[56]
    lbb_g = float(lbb[lbb.index.str[0] == "G"].sum())
    assert lbb_g > 0.5  # La Bonne Boîte: restaurants hire mostly hotel-restaurant occupations
    assert shares[6] == pytest.approx(lbb_g, abs=0.15)  # domain G


def test_identifiers_codes_and_overlap(generated: tuple[Path, dict[str, Path]]) -> None:
    root, paths = generated
    tables = {s: _valid(p, s) for s, p in paths.items()}
    every = pd.concat(tables.values())
    assert every["siret"].map(siret_valid).all()
    assert every["naf"].isin(naf_subclasses().index).all()
    shared = set(tables["france_travail"]["siret"]) & (
        set(tables["carif_oref"]["siret"]) | set(tables["apec"]["siret"])
    )
    assert len(shared) > 0.05 * (len(tables["carif_oref"]) + len(tables["apec"]))
    truth = pd.read_csv(root / TRUTH_FILE, dtype=str)
    assert set(truth["type"]) == {t.name for t in COMPANY_TYPES}
    assert not (root / "france_travail" / TRUTH_FILE).exists()  # the truth is in no holder's folder
    view = company_view(tables["apec"])
    assert (view["size_bracket"] >= "11").mean() > 0.4  # APEC follows larger establishments


def test_bad_rows_are_counted_with_file_line_and_field(generated: tuple[Path, dict[str, Path]]) -> None:
    _, paths = generated
    raw = load_file(paths["france_travail"], "france_travail", as_read)
    valid, report = validate_companies(raw, "france_travail/entreprises.csv")
    assert len(valid) == len(raw) - 3 and report.rows_left_out == 3
    found = {(p.field, p.rule) for p in report.problems}
    assert found == {
        ("naf", "company.naf_unknown"),
        ("size_bracket", "company.size_out_of_range"),
        ("hiring_projects", "company.count_negative"),
    }
    lines = sorted(p.line for p in report.problems)
    assert lines == [len(raw) - 1, len(raw), len(raw) + 1]  # the three last data lines (header = line 1)
    assert str(report.problems[0]).startswith("france_travail/entreprises.csv:")
    assert np.all(pd.to_numeric(valid["hiring_projects"]) >= 0)
