"""``r2dde audit verify`` throughput: events per second on exports of growing size (linear?).

Builds exports the way the broker writes them (``Ledger.apply`` for the state, the ledger's ε for
each budget event, one signed head per 64 events as group commit signs them, receipts for a node),
at four sites: DP-SGD rounds (reserve + commit; every tenth with other parameters, every 50th
released), a DP query batch every 25 rounds. Then times ``verify_export`` with the receipts.
Wall time and this process's CPU time are both reported: the machine is shared, and the CPU time is
what verification costs whatever else runs. Prints and writes
``benchmarks/results/broker_audit_verify.json``.

    .venv/bin/python benchmarks/broker/bench_audit_verify.py --events 10000 30000 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from trust_broker.audit.chain import AuditEvent, next_event, sign_head  # noqa: E402
from trust_broker.audit.export import write_export  # noqa: E402
from trust_broker.audit.receipts import keep_receipt, sign_receipt  # noqa: E402
from trust_broker.audit.verify import verify_export  # noqa: E402
from trust_broker.ledger import (  # noqa: E402
    AccountKey,
    GaussianQuery,
    Ledger,
    LedgerEvent,
    SubsampledGaussian,
    compose_epsilon,
    spelling,
)

SITES = ("france_travail", "apec", "missions_locales", "carif_oref")
DELTA = 1e-7
CAP = 1e4  # the benchmark times the checks, not the overspend path
HEAD_EVERY = 64
RESULTS = REPO / "benchmarks" / "results" / "broker_audit_verify.json"


def _mechanism(number: int, index: int) -> SubsampledGaussian | GaussianQuery:
    if number % 25 == 24:
        return GaussianQuery(noise_multiplier=30.0, count=40, delta=DELTA)
    if number % 10 == 9:
        return SubsampledGaussian(noise_multiplier=2.0, sample_rate=0.004, steps=250, delta=DELTA)
    # sites differ, so no cache is flattered by identical histories
    return SubsampledGaussian(noise_multiplier=4.0 + 0.1 * index, sample_rate=0.002, steps=120, delta=DELTA)


def build(target: int, key: Ed25519PrivateKey, receipts: Path) -> tuple[list[AuditEvent], list[str]]:
    events: list[AuditEvent] = []
    heads: list[str] = []
    ledger = Ledger()
    start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    number = 0
    while len(events) < target:
        for index, site in enumerate(SITES):
            account = AccountKey(site, "parcours", "2026")
            mechanism = _mechanism(number, index)
            request_id = f"{site}/r{number}"
            last = "budget.released" if number % 50 == 49 else "budget.committed"
            for kind in ("budget.reserved", last):
                text = spelling(mechanism)
                ledger.apply(LedgerEvent(kind, account, request_id, text, "etude-2026-001"))
                payload = {
                    "account": account.to_json(),
                    "request_id": request_id,
                    "reservation_id": request_id,
                    "study_id": "etude-2026-001",
                    "mechanism": mechanism.model_dump(mode="json"),
                    "cap": CAP,
                    "delta": DELTA,
                    "epsilon": compose_epsilon(ledger.mechanisms(account), DELTA),
                }
                at = start + dt.timedelta(seconds=len(events))
                events.append(
                    next_event(
                        events[-1] if events else None, kind=kind, actor="broker", payload=payload, at=at
                    )
                )
                if len(events) % HEAD_EVERY == 0:
                    heads.append(sign_head(key, events[-1], "broker"))
                    keep_receipt(receipts / "apec.jsonl", sign_receipt(key, "broker", events[-1], events[-1]))
        number += 1
    heads.append(sign_head(key, events[-1], "broker"))
    return events, heads


def measure(target: int) -> dict[str, object]:
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as folder:
        receipts = Path(folder) / "receipts"
        began = time.perf_counter()
        events, heads = build(target, key, receipts)
        build_seconds = time.perf_counter() - began
        path = Path(folder) / "audit.jsonl"
        with path.open("w", encoding="utf-8") as fp:
            write_export(fp, broker_public_key=key.public_key(), kid="broker", events=events, heads=heads)
        began, cpu = time.perf_counter(), time.process_time()
        report = verify_export(path, receipts=receipts)
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
        size = path.stat().st_size
    return {
        "events": len(events),
        "heads": len(heads),
        "receipts": report.receipts,
        "export_bytes": size,
        "build_seconds": round(build_seconds, 1),
        "verify_seconds": round(seconds, 2),
        "events_per_second": round(len(events) / seconds),
        "verify_cpu_seconds": round(cpu_seconds, 2),
        "events_per_cpu_second": round(len(events) / cpu_seconds),
        "verify_ok": report.ok,
        "problems": [f"{p.rule}: {p.detail}" for p in report.problems[:5]],
        "final_epsilon_rdp": {k.label: round(a.epsilon_recorded, 4) for k, a in report.accounts.items()},
        "final_epsilon_pld": {k.label: round(a.epsilon_pld or 0.0, 4) for k, a in report.accounts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    args = parser.parse_args()
    runs = []
    for target in args.events:
        run = measure(target)
        print(json.dumps({k: v for k, v in run.items() if not k.startswith("final")}), flush=True)
        runs.append(run)
    result = {
        "benchmark": "broker_audit_verify",
        "command": "benchmarks/broker/bench_audit_verify.py --events " + " ".join(map(str, args.events)),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
