"""The demo's own counselor notes through the scrubber, then through an independent leak detector.

    R2DDE_REFERENCE_DATA=../shared/data .venv/bin/python benchmarks/anonymization/demo_notes_leaks.py \
        [--people 6000] [--sites 3] [--label after]

Writes the partner data `r2dde simulate` writes for the demo (same generator, seed 42, 6 000 people,
the first three sites) to a temporary folder, scrubs every `counselor_note` with the node's scrubber,
and counts what `leak_detector.py` (plain regular expressions, no code shared with the scrubber) still
flags, plus each note's own person's first name or surname still readable. Goal: 0. Saved to
benchmarks/results/anonymization_demo_notes_leaks[_<label>].json, every hit listed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
from common import machine, save
from leak_detector import count

from anonymization.scrubber import FrenchScrubber
from simulations.partners import DEFAULT_SITES, generate_partners


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    scrubber = FrenchScrubber(batch_size=64)
    totals: Counter[str] = Counter()
    listed: list[dict] = []
    notes_total = seconds = 0.0
    per_site = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = generate_partners(
            Path(folder), seed=args.seed, people=args.people, sites=list(DEFAULT_SITES[: args.sites])
        )
        for site, path in paths.items():
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            notes = frame["counselor_note"].tolist()
            t0 = time.perf_counter()
            scrubbed = scrubber.scrub_batch(notes)
            seconds += time.perf_counter() - t0
            notes_total += len(notes)
            site_hits: Counter[str] = Counter()
            for i, text in enumerate(scrubbed):
                names = {frame["first_name"][i], frame["last_name"][i]} - {""}
                rules, hits = count([text], names)
                site_hits.update(rules)
                listed.extend(
                    {"site": site, "row": i + 1, "rule": r, "value": v, "note": text} for _, r, v in hits
                )
            per_site[site] = {"notes": len(notes), "leaks": dict(site_hits)}
            totals.update(site_hits)
    result = {
        "notes": int(notes_total),
        "leaks_total": sum(totals.values()),
        "leaks_per_rule": dict(totals),
        "per_site": per_site,
        "notes_per_second": round(notes_total / seconds, 1),
        "hits": listed[:100],  # the first 100; counts cover all
        "generator": {"seed": args.seed, "people": args.people, "sites": list(DEFAULT_SITES[: args.sites])},
        "machine": machine(),
    }
    for hit in listed[:40]:
        print(hit)
    print(
        f"{int(notes_total)} notes, {result['leaks_total']} leaks {dict(totals)}, "
        f"{result['notes_per_second']} notes/s"
    )
    suffix = f"_{args.label}" if args.label else ""
    print(f"saved {save(f'anonymization_demo_notes_leaks{suffix}.json', result)}")


if __name__ == "__main__":
    main()
