"""Time the synthetic partner generator and the schema validation of its files.

Run: ``.venv/bin/python -m simulations.benchmarks.partners_generation [people ...]``; prints a table and
writes ``benchmarks/results/simulations_partners_generation.json``.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from node_agent.sources import load_file
from simulations.partners import generate_partners
from tasks import reference
from tasks.schema import validate_parcours

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "simulations_partners_generation.json"


def _warm_caches() -> float:
    """Parse the reference tables once, as a long-running process would (timed separately)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        generate_partners(Path(folder), seed=0, people=100)
    return time.perf_counter() - start


def run(sizes: list[int]) -> dict[str, object]:
    cold = _warm_caches()
    rows = []
    for people in sizes:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            paths = generate_partners(Path(folder), seed=42, people=people)
            generated = time.perf_counter() - start
            start = time.perf_counter()
            records = sum(len(load_file(path, site, validate_parcours)) for site, path in paths.items())
            validated = time.perf_counter() - start
        rows.append(
            {
                "people": people,
                "records": records,
                "generate_s": round(generated, 3),
                "validate_s": round(validated, 3),
                "records_per_s_generate": round(records / generated),
                "records_per_s_validate": round(records / validated),
            }
        )
        print(
            f"people={people:>6}  records={records:>6}  "
            f"generate={generated:6.2f}s  validate={validated:6.2f}s",
            flush=True,
        )
    return {
        "benchmark": "simulations.partners_generation",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "reference_data": str(reference.reference_data_dir()),
        "cold_start_s": round(cold, 3),
        "runs": rows,
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 6000, 20000]
    result = run(sizes)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"cold start (reference tables parsed) {result['cold_start_s']}s; saved {RESULTS}")


if __name__ == "__main__":
    main()
