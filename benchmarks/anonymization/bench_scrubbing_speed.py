"""Notes per second: FrenchScrubber.scrub_batch vs Presidio's out-of-the-box analyze() loop vs spaCy's
tok2vec+ner `nlp.pipe` alone (no Presidio at all), on the same notes, in the same run.

    .venv/bin/python benchmarks/anonymization/bench_scrubbing_speed.py [--n 600] [--processes 1] [--label L]

With R2DDE_BENCH_CODE=<checkout> the scrubber of another checkout is measured (the "before" of a change);
the ratios to spaCy alone and to Presidio, measured in the same run, are what compare across runs.

Notes are counselor-like: three real ROME sentences plus one or two identifiers.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import spacy
from common import build_eval_set, machine, presidio_out_of_the_box, rome_sentences, save

from anonymization.scrubber import FrenchScrubber


def notes(n: int) -> list[str]:
    rng = random.Random(7)
    sentences = rome_sentences()
    labelled = build_eval_set(n, seed=99)
    return [" ".join(rng.sample(sentences, 2)) + " " + example.text for example in labelled]


def timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--label", default="", help="suffix of the result file (e.g. before, after)")
    args = parser.parse_args()
    texts = notes(args.n)
    warm = texts[:50]

    nlp = spacy.load("fr_core_news_sm", disable=["morphologizer", "parser", "attribute_ruler", "lemmatizer"])
    assert nlp.pipe_names == ["tok2vec", "ner"]
    scrubber = FrenchScrubber(batch_size=args.batch_size, n_process=args.processes)
    presidio = presidio_out_of_the_box()
    contenders: dict[str, Callable[[list[str]], object]] = {
        "spacy": lambda chunk: list(nlp.pipe(chunk, batch_size=args.batch_size)),
        "ours": scrubber.scrub_batch,
        "presidio": lambda chunk: [presidio.analyze(text=t, language="fr") for t in chunk],
    }
    for run in contenders.values():
        run(warm)
    # Chunks are timed in turn, in a rotating order, so that load from other users of a shared machine
    # falls on every contender alike.
    seconds = dict.fromkeys(contenders, 0.0)
    names = list(contenders)
    for index, start in enumerate(range(0, len(texts), args.chunk)):
        chunk = texts[start : start + args.chunk]
        for name in names[index % 3 :] + names[: index % 3]:
            seconds[name] += timed(lambda run=contenders[name], c=chunk: run(c))
    spacy_s, ours_s, presidio_s = seconds["spacy"], seconds["ours"], seconds["presidio"]

    rate = {
        "ours_scrub_batch": args.n / ours_s,
        "presidio_analyze_loop": args.n / presidio_s,
        "spacy_tok2vec_ner_pipe_alone": args.n / spacy_s,
    }
    result = {
        "notes": args.n,
        "mean_chars": round(sum(map(len, texts)) / len(texts)),
        "processes": args.processes,
        "batch_size": args.batch_size,
        "chunk": args.chunk,
        "notes_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ours_vs_presidio": round(rate["ours_scrub_batch"] / rate["presidio_analyze_loop"], 2),
        "ours_vs_spacy_alone": round(rate["ours_scrub_batch"] / rate["spacy_tok2vec_ner_pipe_alone"], 2),
        "goals": {"ours_vs_presidio": ">= 2.5", "ours_vs_spacy_alone": ">= 0.90"},
        "note": "ours analyzes AND replaces; Presidio's loop only analyzes; spaCy alone only runs NER",
        "machine": machine(),
    }
    for name, value in result["notes_per_second"].items():
        print(f"{name:32} {value:8.1f} notes/s")
    print(
        f"ours / presidio = {result['ours_vs_presidio']}x, "
        f"ours / spaCy alone = {result['ours_vs_spacy_alone']}"
    )
    suffix = f"_{args.label}" if args.label else ""
    print(f"saved {save(f'anonymization_scrubbing_speed_p{args.processes}{suffix}.json', result)}")


if __name__ == "__main__":
    main()
