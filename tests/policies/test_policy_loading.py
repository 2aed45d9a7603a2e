"""Loading the shipped policy documents, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import DOCUMENTS_DIR, PolicyLoadError, load_purposes, load_site_policies
from policies.models import LegalBasis

USE_CASES = {"autodiagnostic_mobilite", "besoins_competences_tpe_pme", "commande_publique_formation"}
PARTNERS = {"france_travail", "apec", "missions_locales", "carif_oref"}


def test_shipped_documents_cover_the_three_use_cases_and_the_four_partners() -> None:
    purposes = load_purposes()
    sites = load_site_policies()
    assert set(purposes) >= USE_CASES
    assert set(sites) == PARTNERS
    assert purposes["autodiagnostic_mobilite"].allowed_tasks == ("employment_outcome",)
    assert purposes["autodiagnostic_mobilite"].legal_basis is LegalBasis.PUBLIC_INTEREST


def test_partner_policies_differ_where_the_partners_do() -> None:
    sites = load_site_policies()
    assert sites["apec"].epsilon_cap < sites["france_travail"].epsilon_cap
    assert "mobility_km" not in sites["apec"].exposed_fields("parcours")
    assert "mobility_km" in sites["france_travail"].exposed_fields("parcours")
    assert sites["carif_oref"].accepted_purposes == (
        "besoins_competences_tpe_pme",
        "commande_publique_formation",
    )


def test_every_site_accepts_only_purposes_that_exist_and_exposes_only_allowed_fields_somewhere() -> None:
    purposes = load_purposes()
    for site in load_site_policies().values():
        assert set(site.accepted_purposes) <= set(purposes), site.site
        allowed_anywhere = {name for purpose in purposes.values() for name in purpose.allowed_fields}
        for dataset in site.datasets.values():
            assert set(dataset.exposed_fields) <= allowed_anywhere, site.site


def _copy_site(tmp_path: Path, text_edit: tuple[str, str], name: str = "apec") -> Path:
    folder = tmp_path / "sites"
    folder.mkdir()
    text = (DOCUMENTS_DIR / "sites" / f"{name}.yaml").read_text(encoding="utf-8")
    old, new = text_edit
    assert old in text
    (folder / f"{name}.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_a_misspelled_key_is_an_error_naming_the_file_and_the_key(tmp_path: Path) -> None:
    folder = _copy_site(tmp_path, ("epsilon_cap:", "epsilon_capp:"))
    with pytest.raises(PolicyLoadError) as caught:
        load_site_policies(folder)
    assert caught.value.path == folder / "apec.yaml"
    assert caught.value.key == "epsilon_capp"
    assert "apec.yaml" in str(caught.value) and "epsilon_capp" in str(caught.value)


def test_a_bad_nested_value_names_its_full_key_path(tmp_path: Path) -> None:
    folder = _copy_site(tmp_path, ("records: 60000", "records: beaucoup"))
    with pytest.raises(PolicyLoadError) as caught:
        load_site_policies(folder)
    assert caught.value.key == "datasets.parcours.records"


def test_a_document_whose_id_differs_from_its_file_name_is_refused(tmp_path: Path) -> None:
    folder = _copy_site(tmp_path, ("site: apec", "site: apec_bis"))
    with pytest.raises(PolicyLoadError) as caught:
        load_site_policies(folder)
    assert caught.value.key == "site"
    assert "apec_bis" in caught.value.detail


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "purposes"
    folder.mkdir()
    (folder / "broken.yaml").write_text("id: broken\nlabel_fr: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyLoadError) as caught:
        load_purposes(folder)
    assert caught.value.key.startswith("line ")


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_purposes(tmp_path / "nowhere")
