"""How long the ledger takes to compose an account, and the auditor to verify a year of budget events.

A year at four sites: ``--rounds`` DP-SGD rounds per site (reserve + commit each), every tenth
round with other parameters (another study), a DP query batch each 25 rounds. Prints and writes
``benchmarks/results/audit_verify.json``.

    .venv/bin/python benchmarks/audit/verify_throughput.py --rounds 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.chain import AuditEvent, next_event, sign_head
from trust_broker.audit.export import write_export
from trust_broker.audit.verify import verify_export
from trust_broker.ledger import (
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
RESULTS = Path(__file__).resolve().parents[1] / "results" / "audit_verify.json"


def build(rounds: int, key: Ed25519PrivateKey) -> tuple[list[AuditEvent], float, int]:
    events: list[AuditEvent] = []
    ledger = Ledger()
    books = {site: AccountKey(site, "parcours", "2026") for site in SITES}
    start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    compose_seconds, compositions = 0.0, 0
    for number in range(rounds):
        for index, (site, key) in enumerate(books.items()):
            sigma = 4.0 + 0.1 * index  # sites differ, so no cache is flattered by identical histories
            if number % 25 == 24:
                mechanism = GaussianQuery(noise_multiplier=30.0, count=40, delta=DELTA)
            elif number % 10 == 9:
                mechanism = SubsampledGaussian(
                    noise_multiplier=2.0, sample_rate=0.004, steps=250, delta=DELTA
                )
            else:
                mechanism = SubsampledGaussian(
                    noise_multiplier=sigma, sample_rate=0.002, steps=120, delta=DELTA
                )
            request_id = f"{site}/r{number}"
            for kind in ("budget.reserved", "budget.committed"):
                ledger.apply(LedgerEvent(kind, key, request_id, spelling(mechanism)))
                began = time.perf_counter()
                epsilon = compose_epsilon(ledger.mechanisms(key), DELTA)
                compose_seconds += time.perf_counter() - began
                compositions += 1
                payload = {
                    "account": key.to_json(),
                    "request_id": request_id,
                    "mechanism": mechanism.model_dump(mode="json"),
                    "cap": 50.0,
                    "delta": DELTA,
                    "epsilon": epsilon,
                }
                at = start + dt.timedelta(hours=len(events))
                events.append(
                    next_event(
                        events[-1] if events else None, kind=kind, actor="broker", payload=payload, at=at
                    )
                )
    return events, compose_seconds, compositions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    events, compose_seconds, compositions = build(args.rounds, key)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        with path.open("w", encoding="utf-8") as fp:
            write_export(
                fp,
                broker_public_key=key.public_key(),
                kid="broker",
                events=events,
                heads=[sign_head(key, events[-1], "broker")],
            )
        began = time.perf_counter()
        report = verify_export(path)
        verify_seconds = time.perf_counter() - began
        size = path.stat().st_size
    final = {key.label: round(account.epsilon_recorded, 4) for key, account in report.accounts.items()}
    worst_gap = max(
        abs(point.epsilon_recorded - point.epsilon_recomputed) / point.epsilon_recomputed
        for account in report.accounts.values()
        for point in account.points
    )
    result = {
        "benchmark": "audit_verify",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "rounds_per_site": args.rounds,
        "sites": len(SITES),
        "events": len(events),
        "export_bytes": size,
        "ledger_compose_ms_mean": round(1000 * compose_seconds / compositions, 2),
        "verify_seconds": round(verify_seconds, 2),
        "verify_ms_per_event": round(1000 * verify_seconds / len(events), 2),
        "verify_ok": report.ok,
        "worst_relative_gap_opacus_vs_dp_accounting": worst_gap,
        "final_epsilon": final,
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
