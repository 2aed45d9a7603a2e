"""Per-entity precision and recall on the hand-written notes, ours next to Presidio out of the box,
the share of PII-free notes left untouched, and notes per second.

    R2DDE_REFERENCE_DATA=../shared/data .venv/bin/python benchmarks/anonymization/eval_handwritten.py \
        [--set eval|tuning] [--label after] [--no-presidio]

`eval` (default) is the reported set (tests/anonymization/data/handwritten_eval.txt, 398 notes written by
hand, never used to tune); `tuning` is the separate set the recognizers were tuned on. Scoring is the one
of tests/anonymization/handwritten.py: an entity counts as found only when a prediction of its type
overlaps it and every letter and digit of it is covered. Saved to
benchmarks/results/anonymization_handwritten_<set>[_<label>].json.
"""

from __future__ import annotations

import argparse
import time

from common import PRESIDIO_TO_OURS, machine, presidio_out_of_the_box, save
from handwritten import EVAL_SET, PRECISION_GOAL, RECALL_GOALS, TUNING_SET, UNCHANGED_GOAL, load_notes, score

from anonymization.recognizers.registry import ENTITY_TAGS
from anonymization.scrubber import FrenchScrubber


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", choices=["eval", "tuning"], default="eval")
    parser.add_argument("--label", default="", help="suffix of the result file (e.g. before, after)")
    parser.add_argument("--no-presidio", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the notes")
    args = parser.parse_args()
    path = EVAL_SET if args.set == "eval" else TUNING_SET
    notes = load_notes(path)
    texts = [n.text for n in notes]

    scrubber = FrenchScrubber()
    scrubber.analyze_batch(texts[:20])  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        ours = [[(s.start, s.end, s.entity_type) for s in spans] for spans in scrubber.analyze_batch(texts)]
    our_rate = args.repeat * len(texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    scrubber.scrub_batch(texts)
    scrub_rate = len(texts) / (time.perf_counter() - t0)

    result: dict = {
        "set": str(path.relative_to(path.parents[3])),
        "role": "reported (never tuned on)" if args.set == "eval" else "tuning",
        "notes": len(notes),
        "gold_entities": sum(len(n.spans) for n in notes),
        "ours": score(notes, ours),
        "notes_per_second": {
            "ours_analyze_batch": round(our_rate, 1),
            "ours_scrub_batch": round(scrub_rate, 1),
        },
        "goals": {"recall": RECALL_GOALS, "precision": PRECISION_GOAL, "pii_free_unchanged": UNCHANGED_GOAL},
        "machine": machine(),
    }
    if not args.no_presidio:
        presidio = presidio_out_of_the_box()
        t0 = time.perf_counter()
        oob = [
            [
                (r.start, r.end, PRESIDIO_TO_OURS[r.entity_type])
                for r in presidio.analyze(text=t, language="fr")
                if r.entity_type in PRESIDIO_TO_OURS
            ]
            for t in texts
        ]
        result["notes_per_second"]["presidio_analyze_loop"] = round(
            len(texts) / (time.perf_counter() - t0), 1
        )
        result["presidio_out_of_the_box"] = score(notes, oob)

    for error in result["ours"]["errors"]:
        print(f"  line {error['line']:4}: {error}")
    print(f"{'entity':16} {'ours P':>7} {'ours R':>7} | {'OOB P':>7} {'OOB R':>7}  gold")
    oob_table = result.get("presidio_out_of_the_box", {}).get("per_type", {})
    for kind in ENTITY_TAGS:
        o, p = result["ours"]["per_type"].get(kind, {}), oob_table.get(kind, {})

        def cell(row: dict, key: str) -> str:
            return f"{row[key]:7.3f}" if row.get(key) is not None else f"{'-':>7}"

        print(
            f"{kind:16} {cell(o, 'precision')} {cell(o, 'recall')} | "
            f"{cell(p, 'precision')} {cell(p, 'recall')}  "
            f"{o.get('gold', 0)}"
        )
    print("ours", result["ours"]["overall"])
    if "presidio_out_of_the_box" in result:
        print("presidio", result["presidio_out_of_the_box"]["overall"])
    print("notes/s", result["notes_per_second"])
    suffix = f"_{args.label}" if args.label else ""
    print(f"saved {save(f'anonymization_handwritten_{args.set}{suffix}.json', result)}")


if __name__ == "__main__":
    main()
