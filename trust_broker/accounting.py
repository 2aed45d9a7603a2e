"""The ledger's arithmetic as the store needs it, on the JSON mechanisms the API carries.

The composition itself (RDP over the history, identical rounds merged) is ``trust_broker.ledger``'s;
this adapter parses the JSON objects of CONTRACTS.md into its ``Mechanism`` types and applies the
account's δ rule (the smallest δ recorded, never above the grant's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from trust_broker import ledger
from trust_broker.ledger.analysis import charged_curve, epsilon_from_rdp
from trust_broker.ledger.state import mechanism_of

RELATIVE_TOLERANCE = 1e-9


class MechanismError(ValueError):
    """A mechanism object the ledger cannot account for; the message names the field."""


def parse_mechanism(data: dict[str, Any]) -> Any:
    """Validate one mechanism object (kind, σ, q, steps, δ…) into the ledger's type."""
    try:
        return ledger.parse_mechanism(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "mechanism"
        raise MechanismError(f"mechanism.{where}: {first['msg']}") from exc


class LedgerAccountant:
    """The store's view of the ledger's ``Accountant`` (RDP, ``ledger.ACCOUNTANTS["rdp"]``): the same
    composition on the JSON mechanisms the API carries, with the account's δ rule."""

    def warm_up(self) -> None:
        """Compose one mechanism so the numeric libraries are loaded before the first request."""
        self.epsilon([{"kind": "gaussian", "noise_multiplier": 1.0, "count": 1, "delta": 1e-6}], 1e-6)

    def _parse_all(self, history: list[dict[str, Any]]) -> list[Any]:
        return [parse_mechanism(item) for item in history]

    def would_exceed(
        self, history: list[dict[str, Any]], new: dict[str, Any], cap: float, delta: float
    ) -> tuple[bool, float]:
        past, candidate = self._parse_all(history), parse_mechanism(new)
        delta = min(delta, ledger.account_delta([*past, candidate], default=delta))
        exceeds, epsilon = ledger.would_exceed(past, candidate, cap, delta)
        return bool(exceeds), float(epsilon)

    def epsilon(self, history: list[dict[str, Any]], delta: float) -> float:
        mechanisms = self._parse_all(history)
        delta = min(delta, ledger.account_delta(mechanisms, default=delta))
        return float(ledger.compose_epsilon(mechanisms, delta))

    def account_delta(self, history: list[dict[str, Any]], delta: float) -> float:
        """δ at which the account's ε is stated: the grant's, or a stricter one recorded in the history."""
        return min(delta, ledger.account_delta(self._parse_all(history), default=delta))

    def charged_delta(self, charged: Mapping[str, int], delta: float) -> float:
        """The account's δ from its charge (mechanism spelling → how many): the grant's, or stricter."""
        return min([delta, *(mechanism_of(text).delta for text, count in charged.items() if count)])

    def charged_epsilon(self, charged: Mapping[str, int], delta: float) -> float:
        """ε of an account's charge: the ledger's hot path (one cached RDP curve per distinct
        mechanism, no parsing per request)."""
        return float(epsilon_from_rdp(charged_curve(charged), delta))

    def within(self, actual: dict[str, Any], reserved: dict[str, Any], delta: float) -> bool:
        """The committed mechanism alone may not cost more than the reserved one (same kind, ε not
        above). Necessary, not sufficient: the store also composes the account with it (a mechanism
        cheaper alone can compose to far more: red-team finding 2)."""
        if actual.get("kind") != reserved.get("kind"):
            return False
        spent = self.epsilon([actual], delta)
        allowed = self.epsilon([reserved], delta)
        return spent <= allowed * (1 + RELATIVE_TOLERANCE)
