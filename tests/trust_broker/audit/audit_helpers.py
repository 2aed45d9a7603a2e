"""Builders and tamperers for audit exports, shared by the audit tests (a unique module name)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.audit.chain import AuditEvent, compute_event_hash, next_event, sign_head
from trust_broker.audit.export import write_export
from trust_broker.audit.signatures import encode_public_key, sign_payload
from trust_broker.ledger import AccountKey, Ledger, LedgerEvent, SubsampledGaussian, compose_epsilon, spelling

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DELTA = 1e-7
CAP = 4.0


@dataclass
class BrokerLog:
    """Appends events as the broker would: each budget event records the ε the ledger composes."""

    key: Ed25519PrivateKey
    kid: str = "broker"
    events: list[AuditEvent] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)

    def add(self, kind: str, actor: str, payload: dict[str, Any]) -> AuditEvent:
        prev = self.events[-1] if self.events else None
        at = START + dt.timedelta(hours=6 * len(self.events))
        event = next_event(prev, kind=kind, actor=actor, payload=payload, at=at)
        self.events.append(event)
        return event

    def budget(
        self,
        kind: str,
        key: AccountKey,
        request_id: str,
        mechanism: SubsampledGaussian | None,
        *,
        cap: float = CAP,
        epsilon_factor: float = 1.0,
    ) -> AuditEvent:
        self.ledger.apply(
            LedgerEvent(kind, key, request_id, None if mechanism is None else spelling(mechanism))
        )
        epsilon = compose_epsilon(self.ledger.mechanisms(key), DELTA) * epsilon_factor
        payload: dict[str, Any] = {
            "account": key.to_json(),
            "request_id": request_id,
            "study_id": "etude-2026-001",
            "cap": cap,
            "delta": DELTA,
            "epsilon": epsilon,
        }
        if mechanism is not None:
            payload["mechanism"] = mechanism.model_dump(mode="json")
        return self.add(kind, "broker", payload)

    def sign_last(self) -> None:
        self.heads.append(sign_head(self.key, self.events[-1], self.kid))

    def write(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as fp:
            write_export(
                fp,
                broker_public_key=self.key.public_key(),
                kid=self.kid,
                events=self.events,
                heads=self.heads,
            )
        return path


ROUND = SubsampledGaussian(noise_multiplier=1.2, sample_rate=0.02, steps=150, delta=DELTA)
FT = AccountKey("france_travail", "parcours", "2026")
APEC = AccountKey("apec", "parcours", "2026")


def grant_for(study_id: str, key: Ed25519PrivateKey) -> str:
    claims = {"iss": "r2dde-trust-broker", "jti": study_id, "iat": 1772442000, "exp": 1780000000}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "broker", "typ": "r2dde-grant+jwt"})


def typical_log(broker_key: Ed25519PrivateKey, node_key: Ed25519PrivateKey) -> BrokerLog:
    """Registration, a decided and granted study, 3 rounds at two sites, a release, an expiry, reports."""
    log = BrokerLog(broker_key)
    node = {"kid": "node.france_travail", "role": "node", "site": "france_travail"}
    log.add(
        "participant.registered", "admin", {**node, "public_key": encode_public_key(node_key.public_key())}
    )
    log.add(
        "study.requested",
        "coordinator",
        {"study_id": "etude-2026-001", "purpose_id": "autodiagnostic_mobilite"},
    )
    log.add("study.decided", "broker", {"study_id": "etude-2026-001", "allowed": True, "reasons": []})
    log.add(
        "grant.issued",
        "broker",
        {"study_id": "etude-2026-001", "grant": grant_for("etude-2026-001", broker_key)},
    )
    log.sign_last()
    for round_number in (1, 2, 3):
        for key in (FT, APEC):
            request_id = f"etude-2026-001/{key.site}/r{round_number}"
            log.budget("budget.reserved", key, request_id, ROUND)
            log.budget("budget.committed", key, request_id, ROUND.model_copy(update={"steps": 140}))
        report = {
            "study_id": "etude-2026-001",
            "site": "france_travail",
            "round": round_number,
            "records": 1200,
        }
        log.add("node.report", "node.france_travail", sign_payload(report, node_key, "node.france_travail"))
    log.budget("budget.reserved", APEC, "etude-2026-001/apec/r4", ROUND)
    log.budget("budget.released", APEC, "etude-2026-001/apec/r4", None)
    log.budget("budget.reserved", FT, "etude-2026-001/france_travail/r4", ROUND)
    log.budget("budget.expired", FT, "etude-2026-001/france_travail/r4", None)
    log.sign_last()
    return log


def write_lines(folder: Path, lines: list[str], name: str = "audit.jsonl") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event_lines(lines: list[str], kind: str) -> list[int]:
    """1-based line numbers of the events of ``kind``."""
    return [number for number, text in enumerate(lines, start=1) if json.loads(text).get("kind") == kind]


def _hashed(record: dict[str, Any]) -> dict[str, Any]:
    fields = {name: record[name] for name in ("seq", "at", "kind", "actor", "payload", "prev_hash")}
    return {**record, "hash": compute_event_hash(**fields)}


def rehash(text: str, mutate: Callable[[dict[str, Any]], None]) -> str:
    """Edit one event and give it a correct hash of its new content (its prev_hash unchanged)."""
    record = json.loads(text)
    mutate(record)
    return json.dumps(_hashed(record))


def rechain_from(
    lines: list[str], line: int, mutate: Callable[[dict[str, Any]], None], broker_key: Ed25519PrivateKey
) -> list[str]:
    """What a dishonest broker could do: edit one event, re-link everything after it, re-sign the heads."""
    out = list(lines)
    prev_hash: str | None = None
    by_seq: dict[int, AuditEvent] = {}
    for index, text in enumerate(out):
        record = json.loads(text)
        if record.get("type") != "event":
            continue
        if index + 1 == line:
            mutate(record)
        if prev_hash is not None:
            record["prev_hash"] = prev_hash
        record = _hashed(record)
        prev_hash = record["hash"]
        by_seq[record["seq"]] = AuditEvent.model_validate({k: v for k, v in record.items() if k != "type"})
        out[index] = json.dumps(record)
    for index, text in enumerate(out):
        record = json.loads(text)
        if record.get("type") == "head":
            seq = jwt.decode(record["jws"], options={"verify_signature": False})["seq"]
            out[index] = json.dumps({"type": "head", "jws": sign_head(broker_key, by_seq[seq], "broker")})
    return out
