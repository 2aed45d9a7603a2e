"""Where one diagnosis spends its CPU: the service's own handler steps, profiled in-process.

Run by hand after `make demo`:
    PYTHONPATH=. .venv/bin/python benchmarks/autodiag/profile_request.py --study runs/demo

Parses a person's answers (typed job title and commune, as a person types them), diagnoses and
renders the answer page, exactly as ``POST /diagnostic`` does, ``--repeat`` times after a warm-up;
prints CPU milliseconds per request and cProfile's heaviest functions (the standard library's
profiler: the handler is synchronous, so a sampling profiler adds nothing here). The HTTP layer
is measured by ``latency.py``. Writes benchmarks/results/autodiag_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from pathlib import Path

import torch

from autodiag.catalogue import catalogue
from autodiag.service import open_study
from autodiag.web import Pages, hidden_fields, parse_profile

RESULTS = Path(__file__).resolve().parents[1] / "results" / "autodiag_profile.json"
ANSWERS = {
    "metier": "Aide-soignant / Aide-soignante en gériatrie",
    "lieu": "Toulon",
    "diplome": "bac",
    "mois": "9",
    "rayon": "25",
    "permis": "non",
    "formation": "non",
    "precedent": "",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=Path("runs/demo"))
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as each service process does
    opened = open_study(args.study)
    cat, pages = catalogue(), Pages()
    pages.env.globals["report"] = opened.model.report

    def request() -> str:
        from autodiag.diagnosis import diagnose

        profile, _ = parse_profile(ANSWERS, cat)
        assert profile is not None, "the answers no longer resolve to one person"
        diagnosis = diagnose(opened.model, cat, profile, opened.similar)
        page = pages.render(
            "answer.html",
            diagnosis=diagnosis,
            hidden=hidden_fields(profile),
            counselor=False,
            report=opened.model.report,
            gate=opened.gate,
            model=opened.model,
            layers=[],
        )
        return bytes(page.body).decode()

    for _ in range(20):
        request()
    started = time.process_time()
    for _ in range(args.repeat):
        request()
    per_request_ms = (time.process_time() - started) / args.repeat * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeat):
        request()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
    stats.print_stats(
        r"autodiag|encoding|jinja2/environment.py.*render|torch/nn/modules/module.py.*_call_impl", 20
    )
    print(text.getvalue())
    result = {"study": str(args.study), "repeat": args.repeat, "cpu_ms_per_request": round(per_request_ms, 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
