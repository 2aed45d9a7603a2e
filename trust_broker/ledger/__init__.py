"""The privacy-budget ledger's pure part: mechanisms, accounts and their composition into ε.

The accountant (and so Opacus, a slow import) loads on first use of one of its names, so that
reading accounts and mechanisms, e.g. in the CLI, stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trust_broker.ledger.account import AccountBook, AccountKey, EntryState, LedgerError, period_of
from trust_broker.ledger.mechanisms import GaussianQuery, Mechanism, SubsampledGaussian, parse_mechanism

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
    "AccountBook",
    "AccountKey",
    "Accountant",
    "EntryState",
    "GaussianQuery",
    "LedgerError",
    "Mechanism",
    "SubsampledGaussian",
    "account_delta",
    "compose_epsilon",
    "get_accountant",
    "parse_mechanism",
    "period_of",
    "would_exceed",
]
