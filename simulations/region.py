"""A region's worth of partners (use case 1): France Travail agencies and Missions Locales as sites.

PACA has about seventy France Travail agencies and 29 Missions Locales; a region-wide federation is
50-100 nodes, not three. This module lays out 100 use-case-1 sites with sizes taken from public data:

- **France Travail agencies** (``REGION_AGENCIES`` = 70): each BMO bassin gets agencies in proportion
  to its job seekers (catégories A, B, C), at least one; an agency follows its bassin's job seekers
  divided by its number of agencies. Job seekers per bassin: the sum over occupations of ``defm_abc``
  in France Travail's 2021 tension table (``labour_market/tension_bassin_rome_2021.csv``, via
  ``tasks.reference.tension_table``): 395 021 in PACA's 17 bassins.
- **Missions Locales** (``REGION_MISSIONS_LOCALES`` = 29, the PACA network's count): placed in the
  bassins like the agencies; the 90 000 young people the regional network declares in its shipped
  policy document (``policies/documents/sites/missions_locales.yaml``) are shared by the bassin's job
  seekers. No open file gives each Mission Locale's own caseload; this split is our assumption.
- **APEC**: one regional site, sized by its shipped policy document (60 000 executives followed).
  Carif-Oref holds no ``parcours`` dataset (its policy exposes trainings and companies), so it takes
  no part in use case 1.

The number of agencies and of Missions Locales are public counts (France Travail's and the Missions
Locales' regional networks), not read from ``../shared/data``. Sites serve their bassin only: their
people live there (``SiteProfile.bassins``). The site policies of these sites are generated from their
network's shipped document into the run's folder (``write_site_policies``), never into the repository.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from simulations.site_profiles import DEFAULT_SITES, SITE_PROFILES, SiteProfile

REGION_AGENCIES = 70
REGION_MISSIONS_LOCALES = 29
#: Every use-case-1 site of the region: the agencies, the Missions Locales and APEC.
REGION_SITES = REGION_AGENCIES + REGION_MISSIONS_LOCALES + 1
#: A site never gets fewer simulated people than this: the DP plan needs 100 training records
#: after the holdout, opt-outs and generalization (``node_agent.dp_plan.plan_study``), counted on
#: the site's *released* size (n + N(0, 20²), ``node_agent.site_size``): 100 + 3·20 records to
#: spare, over a holdout of a fifth.
MIN_SITE_PEOPLE = 250
#: The parcours dataset of every network, as its shipped policy document names it.
PARCOURS = "parcours"


@dataclass(frozen=True)
class RegionSite:
    """One partner of the region: its generator profile, its name and the records it declares."""

    profile: SiteProfile
    label: str
    records: int  # the real-scale size its policy declares (the simulation draws a scaled-down share)
    source: str  # where that size comes from

    @property
    def site(self) -> str:
        return self.profile.site


def _shipped_records(network: str) -> int:
    from policies.loader import load_site_policies

    return load_site_policies()[network].datasets[PARCOURS].records


def _split(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """``total`` items over weights, at least ``minimum`` each, largest remainders first."""
    base = np.full(len(weights), minimum)
    raw = (total - base.sum()) * weights / weights.sum()
    counts = base + np.floor(raw).astype(int)
    counts[np.argsort(-(raw - np.floor(raw)), kind="stable")[: total - int(counts.sum())]] += 1
    return np.asarray(counts, dtype=int)


def _job_seekers_by_bassin() -> dict[str, float]:
    """DEFM A-B-C per BMO bassin of PACA (2021), summed over occupations."""
    from tasks import reference

    bassins = set(reference.communes_paca()["bassin"].astype(str))
    table = reference.tension_table()
    in_paca = table[table["bassin"].isin(bassins)]
    return {str(b): float(v) for b, v in in_paca.groupby("bassin")["defm_abc"].sum().sort_index().items()}


def _bassin_labels() -> dict[str, str]:
    from tasks import reference

    communes = reference.communes_paca()
    return {
        str(b): " ".join(str(g.iloc[0]).title().split())
        for b, g in communes.groupby("bassin")["bassin_label"]
    }


def _network_sites(
    network: str, count: int, prefix: str, noun: str, total: float, source: str
) -> list[RegionSite]:
    """``count`` sites of a network over the bassins, by their job seekers: a bassin with twice the job
    seekers has about twice the agencies, each as large as its neighbours, which is how networks staff."""
    seekers = _job_seekers_by_bassin()
    bassins = list(seekers)
    weights = np.array([seekers[b] for b in bassins])
    per_bassin = _split(count, weights, 1)
    labels = _bassin_labels()
    base = SITE_PROFILES[network]
    sites = []
    for bassin, k, w in zip(bassins, per_bassin, weights, strict=True):
        for i in range(1, int(k) + 1):
            site = f"{network}_{bassin}_{i}"
            profile = replace(
                base,
                site=site,
                record_prefix=f"{prefix}{bassin}{i}",
                share=total * w / weights.sum() / int(k),
                network=network,
                bassins=(bassin,),
            )
            label = f"{noun} {labels.get(bassin, bassin)} n° {i} (bassin {bassin}, simulée)"
            sites.append(RegionSite(profile, label, max(1, round(profile.share)), source))
    return sites


@lru_cache(maxsize=1)
def region_layout() -> tuple[RegionSite, ...]:
    """Every site of the simulated region, in the order ``region_sites`` takes them."""
    tension = "DEFM A-B-C of the bassin, France Travail tension table 2021 (tension_bassin_rome_2021.csv)"
    agencies = _network_sites(
        "france_travail",
        REGION_AGENCIES,
        "FT",
        "Agence France Travail",
        sum(_job_seekers_by_bassin().values()),
        f"{tension} / agencies of the bassin",
    )
    young = _shipped_records("missions_locales")
    missions = _network_sites(
        "missions_locales",
        REGION_MISSIONS_LOCALES,
        "ML",
        "Mission Locale",
        young,
        f"{young} young people of the regional network (shipped policy) x the bassin's share of {tension}",
    )
    regional = [
        RegionSite(
            replace(SITE_PROFILES[n], share=float(_shipped_records(n)), network=n),
            "",
            _shipped_records(n),
            f"policies/documents/sites/{n}.yaml",
        )
        for n in ("apec",)
    ]
    # Each network's sites spread over the list in proportion to their count, so that the first n
    # sites are a fair sample of the region (agencies and Missions Locales of several bassins).
    groups = [_spread_bassins(agencies), _spread_bassins(missions), regional]
    keyed = [((j + 0.5) / len(group), g, j) for g, group in enumerate(groups) for j in range(len(group))]
    return tuple(groups[g][j] for _, g, j in sorted(keyed))


def _spread_bassins(sites: list[RegionSite]) -> list[RegionSite]:
    """First agency of every bassin (largest bassins first), then the second ones, and so on."""
    rank = {s.site: int(s.site.rsplit("_", 1)[1]) for s in sites}
    return sorted(sites, key=lambda s: (rank[s.site], -s.records, s.site))


def region_sites(count: int) -> tuple[str, ...]:
    """The first ``count`` sites of the region (at most ``len(region_layout())``)."""
    layout = region_layout()
    if not 1 <= count <= len(layout):
        raise ValueError(f"the simulated region has {len(layout)} sites; asked for {count}")
    return tuple(s.site for s in layout[:count])


def usecase1_sites(count: int) -> tuple[str, ...]:
    """``r2dde simulate --sites N`` for use case 1: the three historic partners up to 3, else the region."""
    return DEFAULT_SITES[:count] if count <= len(DEFAULT_SITES) else region_sites(count)


def site_profile(site: str) -> SiteProfile:
    """The generator profile of a network (``france_travail``…) or of one of the region's sites."""
    if site in SITE_PROFILES:
        return SITE_PROFILES[site]
    for region_site in region_layout():
        if region_site.site == site:
            return region_site.profile
    known = ", ".join(sorted(SITE_PROFILES))
    raise ValueError(f"unknown site {site!r}; known: {known} and the region's sites (region_sites)")


def is_region_site(site: str) -> bool:
    return site not in SITE_PROFILES


def size_sources(sites: tuple[str, ...] | list[str]) -> dict[str, dict[str, object]]:
    """For the ground truth: each region site's declared size and where it comes from."""
    by_site = {s.site: s for s in region_layout()}
    return {s: {"records": by_site[s].records, "source": by_site[s].source} for s in sites if s in by_site}


def write_site_policies(folder: Path, sites: tuple[str, ...] | list[str]) -> Path:
    """``<folder>/purposes`` (the shipped purposes) and ``<folder>/sites/<site>.yaml`` for every site.

    A region site's document is its network's shipped one with its own id, name and sizes (every
    dataset scaled by the site's share of the network's parcours); a network site's is copied. The
    broker reads this folder; each node reads its own copy (``node_policy``). Returns ``folder``.
    """
    from policies.loader import DOCUMENTS_DIR

    folder = Path(folder)
    if (folder / "purposes").exists():
        shutil.rmtree(folder / "purposes")
    shutil.copytree(DOCUMENTS_DIR / "purposes", folder / "purposes")
    (folder / "sites").mkdir(parents=True, exist_ok=True)
    by_site = {s.site: s for s in region_layout()}
    for site in sites:
        shipped = DOCUMENTS_DIR / "sites" / f"{site_profile(site).kind}.yaml"
        target = folder / "sites" / f"{site}.yaml"
        if site not in by_site or not by_site[site].label:
            shutil.copyfile(shipped, target)
            continue
        region_site = by_site[site]
        document = yaml.safe_load(shipped.read_text(encoding="utf-8"))
        ratio = region_site.records / document["datasets"][PARCOURS]["records"]
        document["site"] = site
        document["label"] = region_site.label
        for dataset in document["datasets"].values():
            dataset["records"] = max(1, round(dataset["records"] * ratio))
        header = f"# Generated by simulations.region for a simulated run; size source: {region_site.source}\n"
        target.write_text(
            header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return folder


def node_policy(policies: Path, site: str, node_dir: Path) -> Path:
    """The site's own copy of its policy in its node's folder (0600), the one its local veto reads."""
    from trust_broker.provision.keys import SITE_POLICY_FILE

    target = Path(node_dir) / SITE_POLICY_FILE
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_bytes((Path(policies) / "sites" / f"{site}.yaml").read_bytes())
    os.chmod(target, 0o600)
    return target


def site_weights(sites: tuple[str, ...] | list[str]) -> dict[str, float]:
    """How the simulated people are shared: the three historic partners by their profile's share;
    as soon as one region site is in the list, every site by the records its policy declares."""
    if not any(is_region_site(s) for s in sites):
        return {s: SITE_PROFILES[s].share for s in sites}
    by_site = {s.site: float(s.records) for s in region_layout()}
    return {s: by_site[s] if s in by_site else float(_shipped_records(s)) for s in sites}
