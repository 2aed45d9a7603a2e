"""Cold start of a node's ClientApp process, per message type (issue 17).

Flower 1.42's deployment engine starts a fresh ``flwr-clientapp`` process for every message. Each
case below runs in such a fresh Python process: import ``node_agent.client_app``, then handle one
message the way the ClientApp does. Measured: the process's wall time, the import time, the time to
open the site's study (admission, data preparation, σ calibration), the handler's time, the peak
memory, and which heavy libraries got loaded.

Cases: a use-case-3 statistics query (1 500 people); a use-case-1 train message (1 500 people), its
study's first message (table prepared) and the next one (table read back from the node's disk);
the same with counselors' notes granted (the French NLP scrubber). The broker is stood in for by a
gate that admits (the node's own work is measured, not the broker's round trips).

Run by hand (not a test), from the repository root:
    .venv/bin/python benchmarks/deployment/node_cold_start.py                      # this tree
    .venv/bin/python benchmarks/deployment/node_cold_start.py --repo OLD --label before   # another tree
Writes benchmarks/results/node_cold_start[_<label>].json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE))

HEAVY = ("torch", "opacus", "presidio_analyzer", "spacy", "sklearn", "scipy")

CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
import node_agent.client_app as client_app
imported = time.perf_counter()
from collections.abc import Mapping
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict
from node_agent import site_study
from node_agent.gate import StudyGate, StudyTerms
from node_agent.settings import resolve
from contracts.instructions import StudyInstructions
from contracts.records import model_arrays  # noqa: E402
from tasks.registry import get_task

case = json.loads(sys.argv[1])


class AdmittingGate(StudyGate):
    def admit(self, instructions, spec):
        fields = tuple(case["fields"])
        return StudyTerms(3.0, 1e-5, case["dataset"], case["purpose"], "public_interest", fields)
    def still_granted(self): return None
    def excluded(self, terms): return frozenset()
    def consented(self, terms): return None
    def reserve(self, request_id, mechanism, examples): return request_id
    def commit(self, reservation_id, mechanism): return None
    def release(self, reservation_id): return None
    def report(self, counts): return None


client_app._gate = lambda settings: AdmittingGate()
context = Context(run_id=1, node_id=1, node_config=case["node_config"], state=RecordDict(), run_config={})
instructions = StudyInstructions(case["study"], case["task"], 3, 1, 64, 0.01, 1.0, 3.0, 1e-5, 0,
                                 fields=",".join(case["fields"]), grant="bench-grant")
config = {**instructions.to_config(), "server-round": case["round"]}
opened = handled = imported
if case["kind"] == "query":
    from tasks.analytics import Measure, QueryRequest, QuerySpec
    spec = QuerySpec(id="t", purpose=case["purpose"], sites=(case["node_config"]["site"],), epsilon=1.0,
                     group_by=("training_domain",),
                     measures=(Measure(name="n", kind="count"),
                               Measure(name="taux", kind="share", field="employed_6m")))
    content = RecordDict({"config": ConfigRecord(instructions.to_config()),
                          "query": ConfigRecord(QueryRequest("r", spec, 1.0).to_config())})
    handler = client_app.query
else:
    task = get_task(case["task"])
    settings = resolve(case["node_config"])
    site_study.open_site_study(settings, instructions, client_app._gate)
    opened = time.perf_counter()
    from tasks.models import mlp
    model = mlp(task.encoder_for(tuple(case["fields"])).width, task.hidden, seed=1)
    content = RecordDict({"arrays": model_arrays(model), "config": ConfigRecord(config)})
    handler = client_app.train
metadata = Metadata(run_id=1, message_id="m", src_node_id=0, dst_node_id=1, reply_to_message_id="",
                    group_id="1", created_at=time.time(), ttl=3600.0, message_type=case["kind"])
before = time.perf_counter()
reply = handler(Message(content=content, metadata=metadata), context)
handled = time.perf_counter()
print(json.dumps({
    "import_s": round(imported - start, 3),
    "open_study_s": round(opened - imported, 3) if case["kind"] != "query" else None,
    "handler_s": round(handled - before, 3),
    "answered": reply.has_content(),
    "error": None if reply.has_content() else reply.error.reason,
    "heavy_loaded": [m for m in case["heavy"] if m in sys.modules],
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def _run(repo: Path, case: dict[str, object]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(repo), "FLWR_TELEMETRY_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(case)], capture_output=True, text=True, env=env, cwd=repo
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    row: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_wall_s"] = round(wall, 3)
    return row


def _import_only(repo: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(repo), "FLWR_TELEMETRY_ENABLED": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import node_agent.client_app"],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        check=True,
    )
    wall = time.perf_counter() - start
    last = [line for line in done.stderr.splitlines() if line.endswith("| node_agent.client_app")][-1]
    return {"importtime_s": round(int(last.split("|")[1]) / 1e6, 3), "process_wall_s": round(wall, 3)}


def _data(root: Path) -> dict[str, str]:
    from simulations.partners import generate_partners
    from simulations.usecase3 import generate_formations

    generate_partners(root / "uc1", seed=42, people=1500, sites=("france_travail",))
    generate_formations(root / "uc3", seed=42, people=1500, sites=("carif_oref",))
    keys = root / "keys"
    keys.mkdir()
    (keys / "linkage.key").write_text("ab" * 32)
    os.chmod(keys / "linkage.key", 0o600)
    return {
        "keys": str(keys),
        "uc1": str(root / "uc1" / "france_travail"),
        "uc3": str(root / "uc3" / "carif_oref"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="the tree whose node is measured")
    parser.add_argument("--label", default="", help="suffix of the result file (e.g. before)")
    parser.add_argument("--repeat", type=int, default=3, help="import-only runs")
    args = parser.parse_args()
    from tasks import formations
    from tasks.registry import get_task

    parcours = list(get_task("employment_outcome").default_fields())
    rows: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="r2dde-bench-cold-") as tmp:
        paths = _data(Path(tmp))
        rows["import_only"] = [_import_only(args.repo) for _ in range(args.repeat)]
        node = {"keys-dir": paths["keys"], "state-dir": str(Path(tmp) / "state")}
        query = {
            "kind": "query",
            "task": formations.TASK,
            "study": "bench-q",
            "round": 1,
            "dataset": formations.DATASET,
            "purpose": "commande_publique_formation",
            "fields": ["training_domain", "employed_6m"],
            "node_config": {"site": "carif_oref", "data-dir": paths["uc3"], **node},
        }
        rows["query"] = _run(args.repo, {**query, "heavy": HEAVY})
        for notes, fields in (("train", parcours), ("train_with_notes", [*parcours, "counselor_note"])):
            train = {
                "kind": "train",
                "task": "employment_outcome",
                "study": f"bench-{notes}",
                "dataset": "parcours",
                "purpose": "autodiagnostic_mobilite",
                "fields": fields,
                "node_config": {"site": "france_travail", "data-dir": paths["uc1"], **node},
                "heavy": HEAVY,
            }
            rows[f"{notes}_first_message"] = _run(args.repo, {**train, "round": 1})
            rows[f"{notes}_next_message"] = _run(args.repo, {**train, "round": 2})
            print(
                json.dumps({notes: [rows[f"{notes}_first_message"], rows[f"{notes}_next_message"]]}),
                flush=True,
            )
    result = {
        "benchmark": "node_cold_start",
        "tree": args.label or "current",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average_at_end": os.getloadavg(),
        "method": "one fresh Python process per message, as flwr-clientapp; an admitting gate for the broker",
        "rows": rows,
    }
    print(json.dumps(result, indent=2))
    out = HERE / "benchmarks" / "results" / f"node_cold_start{'_' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
