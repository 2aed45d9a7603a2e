"""What a k target would cost the node's training view, on the demo's partners (issue 10, item 8).

    R2DDE_REFERENCE_DATA=../shared/data .venv/bin/python benchmarks/anonymization/k_anonymity_cost.py [--k 5]

For each site of the demo (same generator, seed 42, 6 000 people, three sites): the view's k over
(age_band, sex, zone_emploi) as it is, then what enforcing k would do — suppress the records of small
classes alone, or first replace the employment zone by the département — and which people that removes
(share of the smallest age bands and of the rural zones among the suppressed, against the site).
Saved to benchmarks/results/anonymization_k_anonymity_cost.json.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

import pandas as pd
from common import machine, save

from anonymization.kanonymity import ReplaceBy, enforce_k_anonymity, k_anonymity_report
from anonymization.keys import LinkageKey
from anonymization.parcours import anonymize_parcours
from simulations.partners import DEFAULT_SITES, generate_partners

QUASI = ["age_band", "sex", "zone_emploi"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    key = LinkageKey(secrets.token_bytes(32), source="benchmark")
    sites = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = generate_partners(Path(folder), seed=42, people=6000, sites=list(DEFAULT_SITES[:3]))
        for site, path in paths.items():
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
            view, _ = anonymize_parcours(
                raw,
                source=site,
                linkage_key=key,
                study_id="k-cost",
                fields=[*QUASI, "departement", "employed_6m"],
            )
            as_is = k_anonymity_report(view, QUASI, args.k)
            _, suppress_only, gone = enforce_k_anonymity(view, QUASI, args.k, [], max_suppression=1.0)
            _, with_dep, _ = enforce_k_anonymity(
                view, QUASI, args.k, [ReplaceBy("zone_emploi", "departement")], max_suppression=0.05
            )
            removed = view.iloc[gone]
            sites[site] = {
                "records": len(view),
                "k_as_is": as_is.k_achieved,
                "records_in_classes_under_k": as_is.records_below_k,
                "suppress_only": {
                    "suppressed": suppress_only.suppressed_records,
                    "share": round(suppress_only.suppressed_records / len(view), 4),
                    "employed_6m_rate_suppressed": round(
                        float(pd.to_numeric(removed["employed_6m"]).mean()), 3
                    )
                    if len(removed)
                    else None,
                    "employed_6m_rate_site": round(float(pd.to_numeric(view["employed_6m"]).mean()), 3),
                    "zones_entirely_removed": int(
                        len(set(view["zone_emploi"]) - set(view.drop(index=view.index[gone])["zone_emploi"]))
                    ),
                },
                "zone_to_departement_then_suppress": {
                    "steps": with_dep.steps_applied,
                    "suppressed": with_dep.suppressed_records,
                    "zone_kept": not with_dep.steps_applied,
                    "k": with_dep.k_achieved,
                },
            }
            print(site, sites[site])
    result = {"k": args.k, "quasi_identifiers": QUASI, "sites": sites, "machine": machine()}
    print(f"saved {save('anonymization_k_anonymity_cost.json', result)}")


if __name__ == "__main__":
    main()
