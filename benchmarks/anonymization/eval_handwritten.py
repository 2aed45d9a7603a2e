"""Hand-written counselor notes (benchmarks/anonymization/handwritten_notes.txt), written once and not
used to tune the recognizers: a small check outside the generated set's templates.

    .venv/bin/python benchmarks/anonymization/eval_handwritten.py
"""

from __future__ import annotations

from pathlib import Path

import regex as re
from common import PRESIDIO_TO_OURS, Example, machine, presidio_out_of_the_box, save
from eval_scrubbing_quality import score

from anonymization.scrubber import FrenchScrubber

LABEL = re.compile(r"\[([A-Z_]+):([^\]]+)\]")
NOTES = Path(__file__).with_name("handwritten_notes.txt")


def parse(line: str) -> Example:
    text, spans, last = [], [], 0
    offset = 0
    for match in LABEL.finditer(line):
        before = line[last : match.start()]
        text.append(before)
        offset += len(before)
        value = match.group(2)
        for prefix in ("Mme ", "M. ", "Mr "):  # civilities are kept in the text, not part of the name
            if match.group(1) == "PERSON" and value.startswith(prefix):
                text.append(prefix)
                offset += len(prefix)
                value = value[len(prefix) :]
        spans.append((offset, offset + len(value), match.group(1)))
        text.append(value)
        offset += len(value)
        last = match.end()
    text.append(line[last:])
    return Example("".join(text), spans)


def main() -> None:
    lines = [ln for ln in NOTES.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    examples = [parse(line) for line in lines]
    texts = [e.text for e in examples]
    ours = [
        [(s.start, s.end, s.entity_type) for s in spans] for spans in FrenchScrubber().analyze_batch(texts)
    ]
    presidio = presidio_out_of_the_box()
    oob = [
        [
            (r.start, r.end, PRESIDIO_TO_OURS[r.entity_type])
            for r in presidio.analyze(text=t, language="fr")
            if r.entity_type in PRESIDIO_TO_OURS
        ]
        for t in texts
    ]
    result = {
        "notes": len(examples),
        "ours": score(examples, ours),
        "presidio_out_of_the_box": score(examples, oob),
        "machine": machine(),
    }
    for example, predicted in zip(examples, ours, strict=True):
        missed = [
            example.text[s:e]
            for s, e, k in example.spans
            if not any(p[2] == k and p[0] < e and s < p[1] for p in predicted)
        ]
        extra = [
            example.text[s:e] + f" ({k})"
            for s, e, k in predicted
            if not any(g[2] == k and g[0] < e and s < g[1] for g in example.spans)
        ]
        if missed or extra:
            print("missed:", missed, "extra:", extra, "|", example.text)
    print("ours", result["ours"]["overall"], "| presidio", result["presidio_out_of_the_box"]["overall"])
    print(f"saved {save('anonymization_scrubbing_handwritten.json', result)}")


if __name__ == "__main__":
    main()
