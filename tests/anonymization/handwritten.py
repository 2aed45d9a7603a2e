"""The hand-written evaluation sets (tests/anonymization/data/) and how a scrubber is scored on them.

Two files, kept apart: `handwritten_tuning.txt` is what the recognizers were tuned on;
`handwritten_eval.txt` is the reported set, written before the recognizers were changed and scored
as it is. One note per line, entities labelled inline as ``[TYPE:text]``; a line without a label is
PII-free and must come out unchanged. Used by the tests and by benchmarks/anonymization.

Scoring is stricter than "a prediction overlaps": a gold entity counts as found only when a prediction
of its type overlaps it *and* every letter and digit of it is covered by some prediction (what is left
readable after scrubbing is a leak, whatever the type). Precision counts a prediction as right when it
overlaps a gold entity of its type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import regex as re

DATA = Path(__file__).resolve().parent / "data"
EVAL_SET = DATA / "handwritten_eval.txt"
TUNING_SET = DATA / "handwritten_tuning.txt"
LABEL = re.compile(r"\[([A-Z_]+):([^\]]+)\]")

# The goals the issue sets on the reported set.
RECALL_GOALS = {
    "FR_NIR": 0.99,
    "FR_PHONE": 0.99,
    "EMAIL_ADDRESS": 0.99,
    "IBAN_CODE": 0.99,
    "FR_SIRET": 0.99,
    "PERSON": 0.95,
    "FR_ADDRESS": 0.95,
}
PRECISION_GOAL = 0.90
UNCHANGED_GOAL = 0.95

Prediction = tuple[int, int, str]


@dataclass
class Note:
    """A note's text, its gold entities as (start, end, type), and its line in the file."""

    text: str
    spans: list[Prediction] = field(default_factory=list)
    line: int = 0


def parse_line(line: str, number: int = 0) -> Note:
    """The note a labelled line stands for."""
    parts: list[str] = []
    spans: list[Prediction] = []
    offset = last = 0
    for match in LABEL.finditer(line):
        before = line[last : match.start()]
        parts.append(before)
        offset += len(before)
        value = match.group(2)
        spans.append((offset, offset + len(value), match.group(1)))
        parts.append(value)
        offset += len(value)
        last = match.end()
    parts.append(line[last:])
    return Note("".join(parts), spans, number)


def load_notes(path: Path) -> list[Note]:
    """Every note of a set (comment lines start with '#')."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        parse_line(text, n) for n, text in enumerate(lines, 1) if text.strip() and not text.startswith("#")
    ]


def _overlaps(a: Prediction, b: Prediction) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _covered(text: str, gold: Prediction, predicted: Sequence[Prediction]) -> bool:
    """Every letter and digit of the gold span lies inside some prediction."""
    return all(any(p[0] <= i < p[1] for p in predicted) for i in range(gold[0], gold[1]) if text[i].isalnum())


def score(notes: Sequence[Note], predictions: Sequence[Sequence[Prediction]]) -> dict:
    """Per-type precision and recall, leak rate, and the share of PII-free notes left untouched."""
    right, wrong, found, missed = Counter(), Counter(), Counter(), Counter()
    leaked = 0
    free = free_untouched = 0
    misses: list[dict] = []
    for note, predicted in zip(notes, predictions, strict=True):
        for p in predicted:
            if any(g[2] == p[2] and _overlaps(p, g) for g in note.spans):
                right[p[2]] += 1
            else:
                wrong[p[2]] += 1
                misses.append({"line": note.line, "extra": note.text[p[0] : p[1]], "type": p[2]})
        for g in note.spans:
            covered = _covered(note.text, g, predicted)
            leaked += not covered
            if covered and any(p[2] == g[2] and _overlaps(p, g) for p in predicted):
                found[g[2]] += 1
            else:
                missed[g[2]] += 1
                misses.append({"line": note.line, "missed": note.text[g[0] : g[1]], "type": g[2]})
        if not note.spans:
            free += 1
            free_untouched += not predicted
    per_type = {}
    for kind in sorted(set(right) | set(wrong) | set(found) | set(missed)):
        n_pred, n_gold = right[kind] + wrong[kind], found[kind] + missed[kind]
        per_type[kind] = {
            "precision": round(right[kind] / n_pred, 4) if n_pred else None,
            "recall": round(found[kind] / n_gold, 4) if n_gold else None,
            "gold": n_gold,
            "predicted": n_pred,
        }
    n_pred = sum(right.values()) + sum(wrong.values())
    n_gold = sum(found.values()) + sum(missed.values())
    return {
        "per_type": per_type,
        "overall": {
            "precision": round(sum(right.values()) / n_pred, 4) if n_pred else None,
            "recall": round(sum(found.values()) / n_gold, 4) if n_gold else None,
            "leak_rate": round(leaked / n_gold, 4) if n_gold else None,
            "pii_free_notes": free,
            "pii_free_unchanged": round(free_untouched / free, 4) if free else None,
        },
        "errors": misses,
    }
