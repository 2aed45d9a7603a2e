"""Precision / recall / F1 per entity type on a labelled French set, ours next to Presidio out of the box.

    .venv/bin/python benchmarks/anonymization/eval_scrubbing_quality.py [--n 1200]

A prediction is correct when it overlaps a gold entity of the same type. `leak_rate` is the share of gold
entities not overlapped by any prediction of any type (what would stay readable after scrubbing).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from common import PRESIDIO_TO_OURS, build_eval_set, machine, presidio_out_of_the_box, rome_sentences, save

from anonymization.recognizers.registry import ENTITY_TAGS
from anonymization.scrubber import FrenchScrubber


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(examples, predictions) -> dict:
    tp_pred, fp, tp_gold, fn, leaked = Counter(), Counter(), Counter(), Counter(), 0
    for example, predicted in zip(examples, predictions, strict=True):
        for start, end, kind in predicted:
            if any(g[2] == kind and overlaps((start, end), g[:2]) for g in example.spans):
                tp_pred[kind] += 1
            else:
                fp[kind] += 1
        for gold in example.spans:
            if any(p[2] == gold[2] and overlaps(p[:2], gold[:2]) for p in predicted):
                tp_gold[gold[2]] += 1
            else:
                fn[gold[2]] += 1
            if not any(overlaps(p[:2], gold[:2]) for p in predicted):
                leaked += 1
    table = {}
    for kind in sorted(set(tp_pred) | set(fp) | set(tp_gold) | set(fn)):
        precision = tp_pred[kind] / (tp_pred[kind] + fp[kind]) if tp_pred[kind] + fp[kind] else 0.0
        recall = tp_gold[kind] / (tp_gold[kind] + fn[kind]) if tp_gold[kind] + fn[kind] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[kind] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "gold": tp_gold[kind] + fn[kind],
            "predicted": tp_pred[kind] + fp[kind],
        }
    n_pred = sum(tp_pred.values()) + sum(fp.values())
    n_gold = sum(tp_gold.values()) + sum(fn.values())
    overall = {
        "precision": round(sum(tp_pred.values()) / n_pred, 4) if n_pred else 0.0,
        "recall": round(sum(tp_gold.values()) / n_gold, 4) if n_gold else 0.0,
        "leak_rate": round(leaked / n_gold, 4) if n_gold else 0.0,
    }
    return {"per_type": table, "overall": overall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1200)
    args = parser.parse_args()
    examples = build_eval_set(args.n)
    texts = [e.text for e in examples]

    ours = FrenchScrubber()
    t0 = time.perf_counter()
    our_predictions = [
        [(s.start, s.end, s.entity_type) for s in spans] for spans in ours.analyze_batch(texts)
    ]
    our_seconds = time.perf_counter() - t0

    presidio = presidio_out_of_the_box()
    t0 = time.perf_counter()
    presidio_predictions = []
    for text in texts:
        results = presidio.analyze(text=text, language="fr")
        presidio_predictions.append(
            [
                (r.start, r.end, PRESIDIO_TO_OURS[r.entity_type])
                for r in results
                if r.entity_type in PRESIDIO_TO_OURS
            ]
        )
    presidio_seconds = time.perf_counter() - t0

    # Real French job texts hold no personal data: everything found there is a false positive.
    real = rome_sentences()
    real_found = Counter(s.entity_type for spans in ours.analyze_batch(real) for s in spans)

    result = {
        "false_positives_on_real_rome_sentences": {
            "sentences": len(real),
            "entities_found": dict(real_found),
            "per_1000_sentences": round(1000 * sum(real_found.values()) / len(real), 2),
        },
        "set": {
            "sentences": len(examples),
            "gold_entities": dict(Counter(k for e in examples for *_, k in e.spans)),
            "seed": 2026,
            "match": "overlap with a gold entity of the same type",
        },
        "ours": score(examples, our_predictions),
        "presidio_out_of_the_box": score(examples, presidio_predictions),
        "seconds": {"ours": round(our_seconds, 2), "presidio_out_of_the_box": round(presidio_seconds, 2)},
        "machine": machine(),
    }
    path = save("anonymization_scrubbing_quality.json", result)
    print(
        f"{'entity':16} {'ours P':>7} {'ours R':>7} {'ours F1':>7} | "
        f"{'OOB P':>7} {'OOB R':>7} {'OOB F1':>7}  gold"
    )
    for kind in ENTITY_TAGS:
        o = result["ours"]["per_type"].get(kind, {})
        p = result["presidio_out_of_the_box"]["per_type"].get(kind, {})
        print(
            f"{kind:16} {o.get('precision', 0):7.3f} {o.get('recall', 0):7.3f} {o.get('f1', 0):7.3f} | "
            f"{p.get('precision', 0):7.3f} {p.get('recall', 0):7.3f} {p.get('f1', 0):7.3f}  "
            f"{o.get('gold', 0)}"
        )
    print(
        "overall ours", result["ours"]["overall"], "| presidio", result["presidio_out_of_the_box"]["overall"]
    )
    print("false positives on real ROME sentences:", result["false_positives_on_real_rome_sentences"])
    print(f"saved {path}")


if __name__ == "__main__":
    main()
