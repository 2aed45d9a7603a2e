"""Use case 1 beyond three partners: the region's agencies and Missions Locales as sites (issue 17)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from policies.loader import DOCUMENTS_DIR, load_site_policies
from simulations import region
from simulations.partners import generate_partners
from tasks import reference

pytestmark = pytest.mark.timeout(420)

SITES = 6


def test_the_region_has_a_hundred_sites_sized_by_the_job_seekers_of_their_bassin():
    layout = region.region_layout()
    kinds = [s.profile.kind for s in layout]
    assert len(layout) == region.REGION_SITES == 100
    assert kinds.count("france_travail") == 70 and kinds.count("missions_locales") == 29
    seekers = reference.tension_table()
    in_paca = seekers[seekers["bassin"].isin(set(reference.communes_paca()["bassin"]))]
    by_bassin = in_paca.groupby("bassin")["defm_abc"].sum()
    agencies = [s for s in layout if s.profile.kind == "france_travail"]
    assert sum(s.records for s in agencies) == pytest.approx(by_bassin.sum(), rel=1e-3)
    for bassin, total in by_bassin.items():  # every bassin served, its job seekers shared by its agencies
        mine = [s.records for s in agencies if s.profile.bassins == (bassin,)]
        assert mine and sum(mine) == pytest.approx(total, abs=len(mine))
    assert len(set(region.region_sites(100))) == 100
    assert region.usecase1_sites(3) == ("france_travail", "apec", "missions_locales")
    with pytest.raises(ValueError, match="100 sites"):
        region.region_sites(101)


def test_an_agency_s_people_live_in_its_bassin_and_shared_people_join_their_bassin_s_agency(tmp_path):
    sites = region.region_sites(12)
    people = 12 * (region.MIN_SITE_PEOPLE + 10)
    floor = region.MIN_SITE_PEOPLE
    paths = generate_partners(tmp_path, seed=3, people=people, sites=sites, min_site_people=floor)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    bassin_of = reference.communes_paca()["bassin"]
    for site in sites:
        frame = pd.read_csv(paths[site], dtype=str, keep_default_na=False)
        profile = region.site_profile(site)
        assert len(frame) >= region.MIN_SITE_PEOPLE
        if profile.bassins:
            assert set(frame["commune"].map(bassin_of)) == set(profile.bassins), site
    assert truth["overlaps"] and all(k.split("|")[0].startswith("france_travail_") for k in truth["overlaps"])
    assert truth["site_sizes"][sites[0]]["source"].startswith("DEFM A-B-C")


def test_generated_site_policies_stay_in_the_run_folder_and_each_node_gets_its_own(tmp_path):
    sites = region.region_sites(5)
    folder = region.write_site_policies(tmp_path / "policies", sites)
    policies = load_site_policies(folder / "sites")  # the broker's loader accepts every document
    assert set(policies) == set(sites)
    ml = next(s for s in sites if s.startswith("missions_locales_"))
    shipped = yaml.safe_load((DOCUMENTS_DIR / "sites" / "missions_locales.yaml").read_text())
    assert policies[ml].accepted_purposes == tuple(shipped["accepted_purposes"])
    declared = {s.site: s.records for s in region.region_layout()}
    assert policies[ml].datasets["parcours"].records == declared[ml]
    assert not any((DOCUMENTS_DIR / "sites" / f"{s}.yaml").exists() for s in sites)
    copy = region.node_policy(folder, ml, tmp_path / "node")
    assert copy.read_bytes() == (folder / "sites" / f"{ml}.yaml").read_bytes()
    assert (copy.stat().st_mode & 0o777) == 0o600


def _ledger(audit: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    reserved: dict[str, list[str]] = {}
    committed: dict[str, list[str]] = {}
    for line in audit.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("kind") in ("budget.reserved", "budget.committed"):
            payload = event["payload"]
            into = reserved if event["kind"] == "budget.reserved" else committed
            into.setdefault(payload["account"]["site"], []).append(payload["request_id"])
    return reserved, committed


def test_six_sites_complete_with_one_reservation_and_commit_per_site_and_message(tmp_path):
    """The real command, in its own process (Ray and the broker start and stop there)."""
    out = tmp_path / "run"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("r2dde")),
            "simulate",
            "--sites",
            str(SITES),
            "--rounds",
            "1",
            "--people",
            str(SITES * region.MIN_SITE_PEOPLE),
            "--opt-outs",
            "5",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    sites = region.region_sites(SITES)
    assert report["status"] == "completed" and report["audit"]["verified"] is True
    assert set(report["sites"]) == set(sites)
    assert all(s["status"] == "trained" for s in report["sites"].values())
    reserved, committed = _ledger(out / "audit.jsonl")
    # the size release, one training round and the one evaluation, each reserved then committed
    for site in sites:
        assert len(reserved[site]) == 3 and sorted(reserved[site]) == sorted(committed[site]), site
    assert set(reserved) == set(sites)
    assert sorted(p.stem for p in (out / "policies" / "sites").glob("*.yaml")) == sorted(sites)
    frame = pd.read_csv(out / "data" / sites[0] / "parcours.csv", dtype=str)
    assert len(frame) >= region.MIN_SITE_PEOPLE
