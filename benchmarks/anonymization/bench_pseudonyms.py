"""Pseudonyms per second: our pre-keyed, copied HMAC vs the naive stdlib `hmac.new(...)` loop, same run.

    .venv/bin/python benchmarks/anonymization/bench_pseudonyms.py [--n 500000]

Both sides hash the same normalized NIRs with the same domain tag and produce hex digests; ours also
writes the versioned prefix. A third line times the full column path (normalize + validate + key).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import time
from collections.abc import Callable

from common import f, machine, save

from anonymization.keys import LinkageKey
from anonymization.pseudonyms import Pseudonymizer, domain_tag


def best_interleaved(repeats: int, contenders: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time of each contender over `repeats` rounds, taking turns so that load changes on a shared
    machine hit every contender alike."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for name, func in contenders.items():
            t0 = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(0)
    pool = [f.nir(rng) for _ in range(10_000)]
    values = [pool[i % len(pool)] for i in range(args.n)]
    written = [f.write_nir(v, rng) for v in pool]
    raw = [written[i % len(written)] for i in range(args.n)]
    key = LinkageKey(os.urandom(32))
    pseudonymizer = Pseudonymizer(key)
    tag = domain_tag("nir")
    secret = key.secret

    def naive() -> list[str]:
        return [hmac.new(secret, tag + v.encode(), hashlib.sha256).hexdigest() for v in values]

    assert naive()[0] == pseudonymizer.linkage("nir", values[0]).rsplit(".", 1)[1]
    study = pseudonymizer.for_study("bench")
    linkage = pseudonymizer.linkage_many("nir", values)
    seconds = best_interleaved(
        args.repeats,
        {
            "naive": naive,
            "ours": lambda: pseudonymizer.linkage_many("nir", values),
            "study": lambda: study.from_linkage_many(linkage),
            "column": lambda: pseudonymizer.pseudonymize_column("nir", raw),
        },
    )
    naive_s, ours_s, study_s, column_s = (seconds[k] for k in ("naive", "ours", "study", "column"))
    result = {
        "identifiers": args.n,
        "per_second": {
            "naive_stdlib_hmac_new_loop": round(args.n / naive_s),
            "ours_linkage_many": round(args.n / ours_s),
            "ours_study_from_linkage_many": round(args.n / study_s),
            "ours_pseudonymize_column_with_normalization_and_nir_key_check": round(args.n / column_s),
        },
        "speedup_vs_naive": round(naive_s / ours_s, 2),
        "goal": ">= 2x the naive loop",
        "machine": machine(),
    }
    for name, rate in result["per_second"].items():
        print(f"{name:64} {rate:>12,d} /s")
    print(f"speed-up vs naive: {result['speedup_vs_naive']}x")
    print(f"saved {save('anonymization_pseudonyms.json', result)}")


if __name__ == "__main__":
    main()
