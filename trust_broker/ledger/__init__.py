"""The privacy-budget ledger's pure part: mechanisms, accounts and their composition into ε.

The accountants (and so the numerical stack: NumPy, SciPy, dp-accounting; never torch) load on
first use of one of their names, so that reading accounts and mechanisms, e.g. in the CLI, stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trust_broker.ledger.account import AccountKey, EntryState, LedgerError, period_of
from trust_broker.ledger.mechanisms import GaussianQuery, Mechanism, SubsampledGaussian, parse_mechanism
from trust_broker.ledger.state import Ledger, LedgerEvent, spelling

if TYPE_CHECKING:
    from trust_broker.ledger.accountant import (
        ACCOUNTANTS,
        Accountant,
        account_delta,
        compose_epsilon,
        get_accountant,
        would_exceed,
    )

_LAZY = {"ACCOUNTANTS", "Accountant", "account_delta", "compose_epsilon", "get_accountant", "would_exceed"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("trust_broker.ledger.accountant"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCOUNTANTS",
    "AccountKey",
    "Accountant",
    "EntryState",
    "GaussianQuery",
    "Ledger",
    "LedgerError",
    "LedgerEvent",
    "Mechanism",
    "SubsampledGaussian",
    "account_delta",
    "compose_epsilon",
    "get_accountant",
    "parse_mechanism",
    "period_of",
    "spelling",
    "would_exceed",
]
