"""``verify_export``: everything an auditor checks in a broker export, offline, with line numbers.

The checks are a registry of small functions (``CHECKS``), each adding ``Problem``s to the report:

- ``chain``: seq continuity (``chain.gap`` for a deleted event, ``chain.order`` for a reordered one,
  ``chain.duplicate``), each event's hash over its content (``chain.hash``: edited) and each link to
  the previous line's hash (``chain.link``: edited and re-hashed, or inserted); ``event.kind``.
- ``heads``: the broker's signature on every head (``head.signature``), that it designates an event
  of the export with the same hash (``head.mismatch``, ``head.unknown_event``: tail deleted) and that
  the last head covers the last event (``head.stale``, ``head.missing``).
- ``signatures``: each ``grant.issued`` grant verifies with the broker key (``grant.signature``) and
  names its study (``grant.mismatch``); each participant signature in a payload verifies against the
  key registered earlier in the chain (``signature.payload``, ``signature.participant``).
- ``budget``: replays every ``budget.*`` event through the ledger's one state machine
  (``Ledger.apply``); the ε the broker recorded must be the one its ledger composes
  (``budget.epsilon_mismatch``) and never below dp-accounting's independent recomputation
  (``budget.accountant``); none of them may pass the account's cap (``budget.overspend``) nor a study's
  spend at a site its grant's ε (``budget.grant_overspend``). The only tolerance is floating-point
  rounding (``recompute.FLOAT_TOLERANCE``, relative 1e-9). ``budget.delta`` when ε is reported at a δ
  looser than one the account promised; ``budget.payload``, ``budget.transition``. Each account's PLD
  ε is reported beside its RDP ε.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from trust_broker.audit.chain import EVENT_KINDS, GENESIS, HeadSignatureError, verify_head
from trust_broker.audit.export import AuditExport, ExportError, read_export
from trust_broker.audit.receipts import ReceiptError, read_receipts, verify_receipt
from trust_broker.audit.recompute import FLOAT_TOLERANCE, charged_epsilon, pld_epsilon, tolerance
from trust_broker.audit.signatures import (
    SIGNATURE_KEY,
    PayloadSignatureError,
    decode_public_key,
    verify_payload,
)
from trust_broker.ledger.account import AccountKey, LedgerError
from trust_broker.ledger.accountant import compose_epsilon
from trust_broker.ledger.analysis import charged_curve, epsilon_from_rdp
from trust_broker.ledger.state import BUDGET_EVENTS, Ledger, LedgerEvent, mechanism_of


@dataclass(frozen=True)
class Problem:
    """Something wrong in the export: where (line, seq), which rule, and what."""

    line: int
    seq: int | None
    rule: str
    detail: str


@dataclass(frozen=True)
class AccountPoint:
    """An account's state right after one budget event (a point of the report's curves)."""

    line: int
    seq: int
    at: str
    kind: str
    request_id: str
    cap: float
    delta: float
    epsilon_recorded: float
    epsilon_recomputed: float


@dataclass
class AccountCheck:
    """One (site, dataset, period) account as the auditor sees it after the last budget event."""

    cap: float
    delta: float
    epsilon_recorded: float
    epsilon_recomputed: float
    overspent: bool = False
    points: list[AccountPoint] = field(default_factory=list)
    epsilon_pld: float | None = None  # privacy loss distributions (dp-accounting): how tight RDP is


@dataclass
class GrantCheck:
    """One study's spend at one site against its grant's per-site ε (NaN: no grant in the export)."""

    cap: float
    epsilon: float


@dataclass
class VerificationReport:
    path: str
    events: int = 0
    heads: int = 0
    problems: list[Problem] = field(default_factory=list)
    accounts: dict[AccountKey, AccountCheck] = field(default_factory=dict)
    grants: dict[tuple[str, str], GrantCheck] = field(default_factory=dict)
    receipts_location: Path | None = None  # the nodes' receipts, checked against the export
    receipts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, line: int, seq: int | None, rule: str, detail: str) -> None:
        self.problems.append(Problem(line, seq, rule, detail))


Check = Callable[[AuditExport, VerificationReport], None]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a check; ``verify_export`` runs them in registration order."""
    CHECKS.append(fn)
    return fn


def verify_export(path: Path | str, *, receipts: Path | str | None = None) -> VerificationReport:
    """Read and verify an export, with the nodes' receipts (a folder of ``*.jsonl``, or one file) when
    given. Unreadable files raise ``ExportError`` (naming the line)."""
    export = read_export(path)
    report = VerificationReport(path=str(path), events=len(export.events), heads=len(export.heads))
    if receipts is not None:
        report.receipts_location = Path(receipts)
        if not report.receipts_location.exists():
            raise ExportError(receipts, 0, "no such receipts file or folder")
    for run in CHECKS:
        run(export, report)
    report.problems.sort(key=lambda problem: (problem.line, problem.rule))
    return report


@check
def _chain(export: AuditExport, report: VerificationReport) -> None:
    all_seqs = {item.event.seq for item in export.events}
    seen: set[int] = set()
    expected_seq = 1
    prev_hash, prev_line, prev_flagged = GENESIS, 0, False
    for item in export.events:
        event, line = item.event, item.line
        flagged = False
        if event.kind not in EVENT_KINDS:
            report.add(line, event.seq, "event.kind", f"unknown event kind {event.kind!r}")
        if event.seq in seen:
            report.add(line, event.seq, "chain.duplicate", f"seq {event.seq} appears a second time")
            flagged = True
        elif event.seq != expected_seq:
            flagged = True
            if event.seq < expected_seq or expected_seq in all_seqs:
                report.add(
                    line,
                    event.seq,
                    "chain.order",
                    f"seq {event.seq} is out of order (expected {expected_seq} here)",
                )
            else:
                missing = (
                    f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}..{event.seq - 1}"
                )
                report.add(line, event.seq, "chain.gap", f"event(s) {missing} missing before seq {event.seq}")
        if (item.content_hash or event.expected_hash()) != event.hash:
            report.add(line, event.seq, "chain.hash", "the event's content does not match its hash (edited)")
        elif not flagged and not prev_flagged and event.prev_hash != prev_hash:
            before = f"the event on line {prev_line}" if prev_line else "the genesis"
            report.add(
                line,
                event.seq,
                "chain.link",
                f"prev_hash is not the hash of {before}: an event was altered and re-hashed, or inserted",
            )
        seen.add(event.seq)
        expected_seq = max(expected_seq, event.seq + 1)
        prev_hash, prev_line, prev_flagged = event.hash, line, flagged


@check
def _heads(export: AuditExport, report: VerificationReport) -> None:
    by_seq = {item.event.seq: item for item in export.events}
    last_line = export.events[-1].line if export.events else 1
    if not export.heads:
        report.add(last_line, None, "head.missing", "no signed head: the broker vouches for no event")
        return
    covered = 0
    for head in export.heads:
        try:
            claims = verify_head(head.jws, export.broker_public_key)
        except HeadSignatureError as exc:
            report.add(head.line, None, "head.signature", str(exc))
            continue
        seq = claims["seq"]
        target = by_seq.get(seq)
        if target is None:
            report.add(
                head.line,
                seq,
                "head.unknown_event",
                f"head signs seq {seq}, absent from the export (deleted)",
            )
            continue
        if claims["hash"] != target.event.hash or claims.get("at") != target.event.at:
            report.add(
                head.line,
                seq,
                "head.mismatch",
                f"head signs another content for seq {seq} (line {target.line})",
            )
            continue
        covered = max(covered, seq)
    if export.events:
        last = export.events[-1]
        if covered < max(by_seq) and not any(p.rule.startswith("head.") for p in report.problems):
            report.add(
                last.line,
                last.event.seq,
                "head.stale",
                f"the last valid head covers seq {covered} only; later events are not vouched for",
            )


def _grant_problem(payload: dict[str, Any], export: AuditExport) -> tuple[str, str] | None:
    grant = payload.get("grant")
    if not isinstance(grant, str):
        return "grant.signature", "grant.issued records no compact JWS under 'grant'"
    try:
        claims = jwt.decode(
            grant,
            export.broker_public_key,
            algorithms=["EdDSA"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        return "grant.signature", f"grant does not verify with the broker key: {exc}"
    study = payload.get("study_id")
    if study is not None and claims.get("jti") != study:
        return "grant.mismatch", f"grant is for study {claims.get('jti')!r}, event says {study!r}"
    return None


@check
def _signatures(export: AuditExport, report: VerificationReport) -> None:
    keys: dict[str, Ed25519PublicKey] = {}
    for item in export.events:
        event, payload = item.event, item.event.payload
        if event.kind == "participant.removed":
            keys.pop(str(payload.get("kid")), None)
        if event.kind == "participant.registered":
            try:
                keys[str(payload["kid"])] = decode_public_key(str(payload["public_key"]))
            except (KeyError, PayloadSignatureError) as exc:
                report.add(item.line, event.seq, "signature.participant", f"unusable participant key: {exc}")
        if event.kind == "grant.issued":
            problem = _grant_problem(payload, export)
            if problem:
                report.add(item.line, event.seq, *problem)
        if SIGNATURE_KEY in payload:
            try:
                verify_payload(payload, keys)
            except PayloadSignatureError as exc:
                report.add(item.line, event.seq, "signature.payload", str(exc))


def _number(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _grant_terms(payload: dict[str, Any]) -> tuple[dict[str, float], float] | None:
    """(per-site ε, δ) a ``grant.issued`` event's JWS binds (its signature is ``_signatures``' check)."""
    try:
        claims = jwt.decode(str(payload.get("grant")), options={"verify_signature": False})
        epsilon = {str(site): float(value) for site, value in dict(claims["epsilon"]).items()}
        return epsilon, float(claims["delta"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None  # a test log's minimal grant, or one _signatures already reports


class _BudgetReplay:
    """The auditor's replay: the ledger's own state machine (``Ledger.apply``), the ledger's ε (to hold
    the broker to its books exactly) and dp-accounting's (an independent floor)."""

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        self.ledger = Ledger()
        self.by_study = Ledger()  # the same transitions, accounts split by study: each grant's spend
        self.grants: dict[str, tuple[dict[str, float], float]] = {}
        self.deltas: dict[AccountKey, float] = {}

    def grant(self, payload: dict[str, Any]) -> None:
        terms = _grant_terms(payload)
        study = payload.get("study_id")
        if terms is not None and isinstance(study, str):
            self.grants[study] = terms

    def event(self, line: int, seq: int, at: str, kind: str, payload: dict[str, Any]) -> None:
        report = self.report
        try:
            event = LedgerEvent.from_payload(kind, payload)
            cap, delta, recorded = (_number(payload, name) for name in ("cap", "delta", "epsilon"))
            if not 0.0 < delta < 1.0:
                raise ValueError(f"delta must be in (0, 1), got {delta}")
            for text in (event.mechanism, event.reserved_mechanism):
                if text is not None:
                    mechanism_of(text)
        except (ValueError, ValidationError) as exc:
            report.add(line, seq, "budget.payload", f"unusable budget event: {exc}")
            return
        key = event.account
        try:
            self.ledger.apply(event)
        except LedgerError as exc:
            report.add(line, seq, "budget.transition", str(exc))
            return
        study = event.study_id or "?"
        study_key = AccountKey(f"{study}|{key.site}", key.dataset, key.period)
        with contextlib.suppress(LedgerError):  # the account's replay above already reported it
            self.by_study.apply(event._replace(account=study_key))
        charged = self.ledger.charged(key)
        strictest = min((mechanism_of(text).delta for text in charged), default=delta)
        if delta > strictest * (1 + FLOAT_TOLERANCE):
            report.add(
                line,
                seq,
                "budget.delta",
                f"{key.label}: ε reported at δ={delta:g}, looser than the account's δ={strictest:g}",
            )
        booked = epsilon_from_rdp(charged_curve(charged), delta)  # the ledger's own composition
        independent = charged_epsilon(charged, delta)
        if abs(recorded - booked) > tolerance(booked):
            side = "under-reported" if recorded < booked else "over-reported"
            report.add(
                line,
                seq,
                "budget.epsilon_mismatch",
                f"{key.label}: broker recorded ε={recorded:.6f}, its ledger composes {booked:.6f} ({side})",
            )
        if independent > recorded + tolerance(recorded):
            report.add(
                line,
                seq,
                "budget.accountant",
                f"{key.label}: dp-accounting composes ε={independent:.6f}, above the broker's {recorded:.6f}",
            )
        worst = max(recorded, booked, independent)
        overspent = worst > cap + tolerance(cap)
        if overspent:
            report.add(
                line, seq, "budget.overspend", f"{key.label}: ε={worst:.6f} passes the cap {cap:g} ({kind})"
            )
        self._study_check(line, seq, study, key, study_key, worst, delta)
        account = report.accounts.get(key)
        if account is None:
            account = report.accounts[key] = AccountCheck(cap, delta, recorded, independent)
        account.cap, account.delta = cap, delta
        account.epsilon_recorded, account.epsilon_recomputed = recorded, independent
        account.overspent = account.overspent or overspent
        account.points.append(
            AccountPoint(
                line, seq, at, kind, str(payload.get("request_id")), cap, delta, recorded, independent
            )
        )
        self.deltas[study_key] = delta

    def _study_check(
        self,
        line: int,
        seq: int,
        study: str,
        key: AccountKey,
        study_key: AccountKey,
        account_eps: float,
        delta: float,
    ) -> None:
        terms = self.grants.get(study)
        if terms is None or key.site not in terms[0]:
            return
        cap = terms[0][key.site]
        if account_eps <= cap + tolerance(cap):
            return  # a study's share never composes to more than its whole account (RDP is monotone)
        charged = self.by_study.charged(study_key)
        spent = max(epsilon_from_rdp(charged_curve(charged), delta), charged_epsilon(charged, delta))
        if spent > cap + tolerance(cap):
            self.report.add(
                line,
                seq,
                "budget.grant_overspend",
                f"study {study} spent ε={spent:.6f} at {key.site}, above its grant's {cap:g}",
            )

    def finish(self) -> None:
        """Each grant's final spend per site, and each account's PLD ε beside its RDP ε."""
        for study_key, delta in self.deltas.items():
            study, site = study_key.site.split("|", 1)
            terms = self.grants.get(study)
            mechanisms = self.by_study.mechanisms(study_key)
            spent = compose_epsilon(mechanisms, delta) if mechanisms else 0.0
            cap = terms[0].get(site, math.nan) if terms else math.nan
            check = self.report.grants.setdefault((study, site), GrantCheck(cap=cap, epsilon=0.0))
            check.epsilon = max(check.epsilon, spent)
        for key, account in self.report.accounts.items():
            mechanisms = self.ledger.mechanisms(key)
            account.epsilon_pld = pld_epsilon(mechanisms, account.delta) if mechanisms else 0.0


@check
def _budget(export: AuditExport, report: VerificationReport) -> None:
    replay = _BudgetReplay(report)
    for item in export.events:
        event = item.event
        if event.kind == "grant.issued":
            replay.grant(event.payload)
        elif event.kind in BUDGET_EVENTS:
            replay.event(item.line, event.seq, event.at, event.kind, event.payload)
    replay.finish()


@check
def _receipts(export: AuditExport, report: VerificationReport) -> None:
    """Each node's receipts against the export: the broker signed (seq, hash) and the head after it, so
    an export that lacks the event (cut) or holds another one there (rewritten, forked) fails."""
    if report.receipts_location is None:
        return
    by_seq = {item.event.seq: item.event.hash for item in export.events}
    last_line = export.events[-1].line if export.events else 1
    for path, number, receipt in read_receipts(report.receipts_location):
        where = f"{path.name}:{number}"
        if receipt is None:
            report.add(last_line, None, "receipt.unreadable", f"{where}: no receipt on this line")
            continue
        try:
            claims = verify_receipt(receipt, export.broker_public_key)
        except ReceiptError as exc:
            report.add(last_line, None, "receipt.signature", f"{where}: {exc}")
            continue
        report.receipts += 1
        for seq, expected in ((claims["head_seq"], claims["head_hash"]), (claims["seq"], claims["hash"])):
            found = by_seq.get(seq)
            if found is None:
                report.add(
                    last_line,
                    seq,
                    "receipt.missing_event",
                    f"{where}: the broker signed event {seq}, absent from the export (cut or withheld)",
                )
            elif found != expected:
                report.add(
                    last_line,
                    seq,
                    "receipt.contradicted",
                    f"{where}: the broker signed another event {seq} than the export holds "
                    "(rewritten or forked)",
                )
