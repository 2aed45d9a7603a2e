"""The node's gate through the trust broker: pinned-key grant check, local policy veto, opt-outs
and consents from the registries, and every round's ε reserved before use and committed after."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import TypeVar

from contracts.instructions import StudyInstructions
from policies.decide import decide
from policies.loader import PolicyLoadError, load_document, load_purposes
from policies.models import LegalBasis, Purpose, SitePolicy, StudyRequest
from tasks.record_values import read_int
from tasks.registry import TaskSpec
from trust_broker.client import BrokerClient, BrokerError, BudgetRefused
from trust_broker.grants import DPBounds, Grant, GrantError, load_pinned_broker_key, verify_grant

from .declined import NodeDeclined
from .gate import StudyGate, StudyTerms
from .settings import NodeSettings

Answer = TypeVar("Answer")


class BrokerGate(StudyGate):
    def __init__(self, settings: NodeSettings) -> None:
        if settings.keys_dir is None or settings.broker_url is None:
            raise NodeDeclined(
                "node.config", "a broker URL needs the node's keys folder (node.key, broker.pub)"
            )
        self.settings = settings
        receipts = (settings.receipts_dir or settings.keys_dir / "receipts") / f"{settings.site}.jsonl"
        try:
            self.broker_key = load_pinned_broker_key(settings.keys_dir)
            self.client = BrokerClient.for_node(
                settings.broker_url, settings.keys_dir, settings.site, receipts=receipts
            )
        except (OSError, ValueError) as exc:
            raise NodeDeclined(
                "node.keys", f"cannot read the node's keys in {settings.keys_dir}: {exc}"
            ) from None
        self.grant: Grant | None = None
        self.opt_out_cursor = 0
        self.opted_out: set[str] = set()
        self.applied_opt_outs = 0

    def admit(self, instructions: StudyInstructions, spec: TaskSpec) -> StudyTerms:
        site = self.settings.site
        if not instructions.grant:
            raise NodeDeclined("grant.missing", "the coordinator sent no grant from the trust broker")
        try:
            grant = verify_grant(instructions.grant, self.broker_key, site=site)
        except GrantError as exc:
            raise NodeDeclined(
                f"grant.{type(exc).__name__.removeprefix('Grant').lower()}", str(exc)
            ) from None
        if grant.study_id != instructions.study_id or grant.task != spec.name:
            raise NodeDeclined("grant.mismatch", "the round's study or task differs from the grant's")
        if instructions.num_rounds > grant.rounds:
            raise NodeDeclined(
                "grant.rounds", f"{instructions.num_rounds} rounds asked, {grant.rounds} granted"
            )
        bounds = grant.dp_bounds
        if not bounds.max_grad_norm_min <= instructions.max_grad_norm <= bounds.max_grad_norm_max:
            raise NodeDeclined(
                "grant.dp_bounds", f"clipping norm {instructions.max_grad_norm} outside the grant's"
            )
        if spec.trains:  # a statistics or clustering study runs no DP-SGD: no learning rate to bound
            self._check_training_bounds(instructions, bounds)
        if instructions.field_list and not set(instructions.field_list) <= set(grant.fields):
            raise NodeDeclined("grant.fields", "the round asks for fields the grant does not cover")
        self._call(lambda: self.client.ensure_not_revoked(grant.study_id))
        purpose = self._local_veto(grant)
        self.grant = grant
        return StudyTerms(
            target_epsilon=grant.epsilon_for(site),
            delta=grant.delta,
            dataset=grant.dataset,
            purpose=grant.purpose,
            legal_basis=str(purpose.legal_basis),
            fields=grant.fields,
            evaluation=grant.evaluation,
            min_cell_size=grant.min_cell_size,
            expires_at=grant.expires_at,
        )

    @staticmethod
    def _check_training_bounds(instructions: StudyInstructions, bounds: DPBounds) -> None:
        """The grant bounds the hyper-parameters, not only σ and C: lr, epochs and batch stay in range."""
        checks = (
            ("learning rate", instructions.learning_rate, bounds.min_learning_rate, bounds.max_learning_rate),
            ("local epochs", instructions.local_epochs, 1, bounds.max_local_epochs),
            ("batch size", instructions.batch_size, bounds.min_batch_size, bounds.max_batch_size),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise NodeDeclined("grant.dp_bounds", f"{name} {value} outside the grant's [{low}, {high}]")

    def _site_policies(self) -> dict[str, SitePolicy]:
        """The site's own document, from the node's own folder, always: in deployment the shipped
        copy comes from the app bundle the coordinator submitted, so it is never read here."""
        path = self.settings.policy_path()
        if path is None or not path.is_file():
            raise NodeDeclined(
                "site.policy_missing",
                f"no site policy of its own at {path} (the app bundle's copy is not the site's word)",
            )
        try:
            policy = load_document(path, SitePolicy)
        except PolicyLoadError as exc:
            raise NodeDeclined("site.policy_invalid", str(exc)) from None
        return {policy.site: policy}

    def still_granted(self) -> None:
        assert self.grant is not None, "still_granted before admit"
        if dt.datetime.now(dt.UTC) >= self.grant.expires_at:
            raise NodeDeclined("grant.expired", f"the grant of study {self.grant.study_id} has expired")
        study_id = self.grant.study_id
        self._call(lambda: self.client.ensure_not_revoked(study_id))

    def _local_veto(self, grant: Grant) -> Purpose:
        """The site's own policy, evaluated here with the same pure rules the broker used."""
        site = self.settings.site
        policies = self._site_policies()
        purposes = load_purposes()
        if site not in policies:
            raise NodeDeclined("site.policy_missing", f"no policy document for site {site}")
        if grant.purpose not in purposes:
            raise NodeDeclined("site.purpose", f"purpose {grant.purpose} is unknown here")
        request = StudyRequest(
            study_id=grant.study_id,
            purpose_id=grant.purpose,
            task=grant.task,
            dataset=grant.dataset,
            fields=grant.fields,
            sites=(site,),
            rounds=grant.rounds,
            target_epsilon=grant.epsilon_for(site),
            delta=grant.delta,
            coordinator=grant.coordinator,
            requested_by=grant.coordinator,
        )
        decision = decide(request, purposes[grant.purpose], {site: policies[site]})
        if not decision.allowed:
            first = decision.reasons[0]
            details = "; ".join(f"{r.rule} ({r.subject}): {r.detail}" for r in decision.reasons)
            raise NodeDeclined(first.rule, details)
        return purposes[grant.purpose]

    def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
        new, self.opt_out_cursor = self._call(
            lambda: self.client.opt_outs(since=self.opt_out_cursor, purpose=terms.purpose)
        )
        self.opted_out.update(new)
        return frozenset(self.opted_out)

    def consented(self, terms: StudyTerms) -> frozenset[str] | None:
        if terms.legal_basis != LegalBasis.CONSENT:
            return None
        items, _ = self._call(lambda: self.client.consents(terms.purpose))
        latest: dict[str, str] = {}
        for item in items:  # in order: the latest action per person wins
            latest[item.linkage_pseudonym] = item.action
        return frozenset(p for p, action in latest.items() if action == "given")

    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        assert self.grant is not None, "reserve before admit"
        try:
            reservation = self.client.reserve(
                request_id=request_id,
                study_id=self.grant.study_id,
                dataset=self.grant.dataset,
                mechanism=mechanism,
                examples=examples,
            )
        except BudgetRefused as exc:
            raise NodeDeclined(exc.rule, exc.detail) from None
        except BrokerError as exc:
            raise NodeDeclined(exc.rule, exc.detail) from None
        return reservation.reservation_id

    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        self._call(lambda: self.client.commit(reservation_id, mechanism))

    def release(self, reservation_id: str) -> None:
        self._call(lambda: self.client.release(reservation_id))

    def report(self, counts: Mapping[str, object]) -> None:
        """The round's entry in the broker's audit trail, which leaves the node: no count of records
        or opt-outs (they are not DP: whether one person was added, or objected, would show), but
        the position in the opt-out list the node applied, a digest of the list it read up to there
        (the auditor recomputes it from the registry) and the node's commitment to its exact counts."""
        assert self.grant is not None, "report before admit"
        study_id = self.grant.study_id
        notes = {"opt_out_digest": self.opt_out_digest()}
        if counts.get("counts_commitment"):
            notes["counts_commitment"] = str(counts["counts_commitment"])
        self._call(
            lambda: self.client.post_node_report(
                study_id,
                round=read_int(counts, "round", 0) or None,
                opt_out_cursor=self.opt_out_cursor,
                reservation_id=str(counts["reservation_id"]) if counts.get("reservation_id") else None,
                notes=notes,
            )
        )

    def opt_out_digest(self) -> str:
        """SHA-256 of the opt-outs read from the registry (sorted, one a line): a function of the
        broker's list up to the cursor, not of which of them are this site's people."""
        return hashlib.sha256("\n".join(sorted(self.opted_out)).encode("utf-8")).hexdigest()

    @staticmethod
    def _call(action: Callable[[], Answer]) -> Answer:
        try:
            return action()
        except BrokerError as exc:
            raise NodeDeclined(exc.rule, exc.detail) from None
