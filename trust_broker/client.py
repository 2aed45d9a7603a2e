"""The broker's client for nodes, the coordinator and auditors: signed requests, clear exceptions.

Every request is signed with the participant's Ed25519 key (RFC 9421, see ``auth.signing``);
transport failures and refusals surface as ``BrokerError`` subclasses, never raw httpx errors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from contracts.broker_api import (
    BalanceOut,
    ConsentItem,
    ConsentPage,
    GrantResponse,
    GrantStatus,
    Health,
    OptOutPage,
    ReservationOut,
)
from contracts.roles import Role
from policies import Reason, StudyRequest
from trust_broker.audit.receipts import keep_receipt
from trust_broker.auth.signing import SignedRequestAuth
from trust_broker.provision.keys import ProvisionedFolder, load_private_key, node_kid

LOG = logging.getLogger("r2dde.broker_client")
DEFAULT_BROKER_URL = "http://127.0.0.1:8443"
#: A node's signing key in its keys folder (``r2dde node keygen`` writes it).
NODE_KEY_FILE = "node.key"
BROKER_URL_ENV = "R2DDE_BROKER_URL"

Reservation = ReservationOut
#: The pydantic model a broker answer is parsed into.
Answer = TypeVar("Answer", bound=BaseModel)


class BrokerError(Exception):
    """The broker refused or could not be reached; ``rule`` is the broker's stable rule id."""

    def __init__(self, rule: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{rule}: {detail}" + (f" (HTTP {status})" if status else ""))
        self.rule = rule
        self.detail = detail
        self.status = status


class BrokerUnavailable(BrokerError):
    """No answer from the broker (connection refused, timeout, TLS…)."""


class AuthRefused(BrokerError):
    """401/403 for authentication, role or site."""


class StudyRefused(BrokerError):
    """The policies refused a study; ``reasons`` lists every refusing rule."""

    def __init__(self, rule: str, detail: str, reasons: list[Reason], status: int = 403) -> None:
        super().__init__(rule, detail, status)
        self.reasons = reasons


class BudgetRefused(BrokerError):
    """The ledger refused a reserve (``budget.cap``, ``budget.study_cap``) or a commit/release."""

    def __init__(
        self,
        rule: str,
        detail: str,
        *,
        limit: float | None = None,
        value: float | None = None,
        reservation_id: str | None = None,
        status: int = 409,
        receipt: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(rule, detail, status)
        self.limit = limit
        self.value = value
        self.reservation_id = reservation_id
        self.receipt = receipt


class GrantNotUsable(BrokerError):
    """The grant behind a request was revoked, refused, expired or does not list the site."""


def _mechanism_json(mechanism: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    if isinstance(mechanism, BaseModel):
        return mechanism.model_dump(mode="json")
    return dict(mechanism)


class BrokerClient:
    """One participant talking to the broker at ``base_url`` with its own key."""

    def __init__(
        self,
        base_url: str,
        *,
        kid: str,
        private_key: Ed25519PrivateKey,
        timeout: float = 10,
        http_client: httpx.Client | None = None,
        receipts: Path | str | None = None,
    ) -> None:
        """``receipts``: a JSON Lines file where the broker's signed receipts are kept (a node's
        witness of the audit chain, for ``r2dde audit verify --receipts``); None keeps none."""
        self.base_url = base_url.rstrip("/")
        self.kid = kid
        self.receipts: Path | None = Path(receipts) if receipts is not None else None
        self._auth = SignedRequestAuth(kid, private_key)
        self._own_client = http_client is None
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=timeout)

    @classmethod
    def from_folder(
        cls,
        provision_dir: Path | str,
        role: Role | str,
        site: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 10,
        receipts: Path | str | None = None,
    ) -> BrokerClient:
        """A client with the key of ``role`` (and ``site`` for a node) from a provisioned folder."""
        folder = ProvisionedFolder(root=Path(provision_dir))
        url = base_url or os.environ.get(BROKER_URL_ENV, DEFAULT_BROKER_URL)
        return cls(
            url,
            kid=folder.kid_for(role, site),
            private_key=load_private_key(folder.private_key_path(role, site)),
            timeout=timeout,
            receipts=receipts,
        )

    @classmethod
    def for_node(
        cls, base_url: str, keys_dir: Path, site: str, *, receipts: Path | str | None = None
    ) -> BrokerClient:
        """The client of ``site``'s node agent, signing with ``keys_dir/node.key`` (``node.<site>``).

        Raises ``ValueError`` naming the file when the key cannot be read.
        """
        private_key = load_private_key(Path(keys_dir) / NODE_KEY_FILE)
        return cls(base_url, kid=node_kid(site), private_key=private_key, receipts=receipts)

    # -- plumbing --------------------------------------------------------------------------------
    def keep_receipts(self, path: Path | str | None) -> None:
        """Keep the broker's receipts in ``path`` from now on (None: stop keeping them)."""
        self.receipts = Path(path) if path is not None else None

    def _keep(self, receipt: Mapping[str, Any] | BaseModel | None, **context: Any) -> None:
        """Append a receipt to the node's file. The change it witnesses is made already: a file that
        cannot be written must not undo the node's round (its reservation would then expire charged),
        so it is reported loudly (rule ``receipts.unwritable``, the path, never an identifier)."""
        if receipt and self.receipts is not None:
            try:
                kept = receipt.model_dump(mode="json") if isinstance(receipt, BaseModel) else dict(receipt)
                keep_receipt(self.receipts, kept, **context)
            except OSError as exc:
                LOG.warning(
                    "receipts.unwritable: cannot keep the broker's receipt in %s (%s); "
                    "give the node a writable receipts-dir",
                    self.receipts,
                    exc.strerror or exc,
                )

    def close(self) -> None:
        if self._own_client:
            self._http.close()

    def __enter__(self) -> BrokerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None} or None,
                auth=self._auth if signed else None,
            )
        except httpx.TimeoutException as exc:
            raise BrokerUnavailable(
                "broker.timeout", f"no answer from {self.base_url}{path} in time"
            ) from exc
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(
                "broker.unreachable", f"cannot reach {self.base_url}{path}: {exc}"
            ) from exc
        if response.status_code >= 400:
            self._raise(response)
        return response

    @staticmethod
    def _body(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _raise(self, response: httpx.Response) -> None:
        body = self._body(response)
        status = response.status_code
        rule = str(body.get("rule", f"http.{status}"))
        detail = str(body.get("detail", response.reason_phrase))
        if status in (401, 403) and rule.startswith("auth."):
            raise AuthRefused(rule, detail, status)
        if status == 403 and body.get("reasons"):
            reasons = [Reason.model_validate(r) for r in body["reasons"]]
            raise StudyRefused(rule, detail, reasons, status)
        if status == 403 and rule.startswith("grant."):
            raise GrantNotUsable(rule, detail, status)
        if status == 409 and rule.startswith("budget."):
            receipt = body.get("receipt") if isinstance(body.get("receipt"), dict) else None
            self._keep(receipt, kind="budget.refused", reservation_id=body.get("reservation_id"))
            raise BudgetRefused(
                rule,
                detail,
                limit=body.get("limit"),
                value=body.get("value"),
                reservation_id=body.get("reservation_id"),
                status=status,
                receipt=receipt,
            )
        if status >= 500:
            raise BrokerUnavailable(rule, detail, status)
        raise BrokerError(rule, detail, status)

    @staticmethod
    def _parse(model: type[Answer], response: httpx.Response) -> Answer:
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise BrokerError("broker.bad_answer", f"unexpected answer from the broker: {exc}") from exc

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> Health:
        return self._parse(Health, self._send("GET", "/v1/health", signed=False))

    # -- studies (region) ------------------------------------------------------------------------
    def request_study(self, request: StudyRequest) -> GrantResponse:
        """201 → the grant; a refusal raises ``StudyRefused`` with every rule's reason."""
        response = self._send("POST", "/v1/studies", json=request.model_dump(mode="json"))
        return self._parse(GrantResponse, response)

    def revoke(self, study_id: str, reason: str) -> GrantStatus:
        return self._parse(
            GrantStatus, self._send("POST", f"/v1/studies/{study_id}/revoke", json={"reason": reason})
        )

    def grant_status(self, study_id: str) -> GrantStatus:
        return self._parse(GrantStatus, self._send("GET", f"/v1/grants/{study_id}/status"))

    def ensure_not_revoked(self, study_id: str) -> GrantStatus:
        """Raise ``GrantNotUsable`` (rule ``grant.revoked``) unless the grant still stands."""
        status = self.grant_status(study_id)
        if status.status != "granted":
            raise GrantNotUsable(f"grant.{status.status}", f"study {study_id} is {status.status}")
        return status

    def post_node_report(
        self,
        study_id: str,
        *,
        opt_out_cursor: int,
        records_used: int | None = None,
        opt_outs_applied: int | None = None,
        round: int | None = None,
        consents_missing: int = 0,
        consent_cursor: int | None = None,
        reservation_id: str | None = None,
        notes: Mapping[str, int | float | str] | None = None,
    ) -> int:
        """Record a node's round entry in the audit chain; returns the event's seq. (The counts are
        optional: the project's nodes no longer send them, see ``NodeReportIn``.)"""
        body = {
            "round": round,
            "records_used": records_used,
            "opt_outs_applied": opt_outs_applied,
            "consents_missing": consents_missing,
            "opt_out_cursor": opt_out_cursor,
            "consent_cursor": consent_cursor,
            "reservation_id": reservation_id,
            "notes": dict(notes or {}),
        }
        response = self._send("POST", f"/v1/studies/{study_id}/reports", json=body)
        return int(self._body(response)["seq"])

    # -- registries (nodes) ----------------------------------------------------------------------
    def add_opt_out(self, linkage_pseudonym: str, purpose: str | None = None) -> int:
        body = {"linkage_pseudonym": linkage_pseudonym, "purpose": purpose}
        return int(self._body(self._send("POST", "/v1/optouts", json=body))["seq"])

    def opt_outs(self, since: int | None = None, *, purpose: str | None = None) -> tuple[list[str], int]:
        """Pseudonyms that objected after ``since`` (all pages; for ``purpose`` if given), and the cursor."""
        cursor = since or 0
        pseudonyms: list[str] = []
        while True:
            page: OptOutPage = self._parse(
                OptOutPage, self._send("GET", "/v1/optouts", params={"since": cursor})
            )
            pseudonyms += [
                item.linkage_pseudonym
                for item in page.items
                if purpose is None or item.purpose in (None, purpose)
            ]
            if not page.items or page.cursor == cursor:
                return pseudonyms, page.cursor
            cursor = page.cursor

    def record_consent(self, linkage_pseudonym: str, purpose: str, action: str = "given") -> int:
        body = {"linkage_pseudonym": linkage_pseudonym, "purpose": purpose, "action": action}
        return int(self._body(self._send("POST", "/v1/consents", json=body))["seq"])

    def consents(self, purpose: str, since: int | None = None) -> tuple[list[ConsentItem], int]:
        """Consent entries for ``purpose`` after ``since`` in order (the latest per pseudonym wins)."""
        cursor = since or 0
        items: list[ConsentItem] = []
        while True:
            params = {"since": cursor, "purpose": purpose}
            page: ConsentPage = self._parse(ConsentPage, self._send("GET", "/v1/consents", params=params))
            items += page.items
            if not page.items or page.cursor == cursor:
                return items, page.cursor
            cursor = page.cursor

    # -- ledger (nodes) --------------------------------------------------------------------------
    def reserve(
        self,
        *,
        request_id: str,
        study_id: str,
        dataset: str,
        mechanism: Mapping[str, Any] | BaseModel,
        examples: int,
    ) -> Reservation:
        """Hold a mechanism's cost; ``BudgetRefused`` (``budget.cap``…) when it would pass a cap."""
        body = {
            "request_id": request_id,
            "study_id": study_id,
            "dataset": dataset,
            "mechanism": _mechanism_json(mechanism),
            "examples": examples,
        }
        return self._kept("budget.reserved", self._send("POST", "/v1/budget/reserve", json=body))

    def commit(self, reservation_id: str, mechanism: Mapping[str, Any] | BaseModel) -> Reservation:
        body = {"reservation_id": reservation_id, "mechanism": _mechanism_json(mechanism)}
        return self._kept("budget.committed", self._send("POST", "/v1/budget/commit", json=body))

    def release(self, reservation_id: str) -> Reservation:
        body = {"reservation_id": reservation_id}
        return self._kept("budget.released", self._send("POST", "/v1/budget/release", json=body))

    def _kept(self, kind: str, response: httpx.Response) -> Reservation:
        reservation: Reservation = self._parse(ReservationOut, response)
        self._keep(
            reservation.receipt,
            kind=kind,
            reservation_id=reservation.reservation_id,
            request_id=reservation.request_id,
        )
        return reservation

    def balance(self, dataset: str, site: str | None = None, *, purpose: str | None = None) -> BalanceOut:
        params = {"dataset": dataset, "site": site, "purpose": purpose}
        return self._parse(BalanceOut, self._send("GET", "/v1/budget/balance", params=params))

    # -- audit (auditor, admin) ------------------------------------------------------------------
    def export_audit(self, path: Path | str) -> Path:
        """Write the broker's JSON Lines export to ``path`` (0600) and return it."""
        response = self._send("GET", "/v1/audit/export")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fp:
            fp.write(response.content)
        return target
