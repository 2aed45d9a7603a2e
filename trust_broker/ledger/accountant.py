"""Compose a dataset account's history of mechanisms into one ε, and refuse what would pass its cap.

``Accountant`` is the interface; ``RdpAccountant`` (Opacus' RDP analysis, the default) and
``PrvAccountant`` (Opacus' PRV accountant, tighter but numerical) implement it and are found by name
in ``ACCOUNTANTS``. The ledger never sums per-round ε: it composes the whole history, across rounds
and across studies, which is both correct and far less wasteful.

δ of an account: the smallest δ any of its mechanisms targeted (``account_delta``), i.e. the
strictest promise made on that dataset; ε is always reported at that δ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

import numpy as np

from trust_broker.ledger.analysis import epsilon_from_rdp, merge_repeats, rdp_curve
from trust_broker.ledger.mechanisms import Mechanism

DEFAULT_ACCOUNTANT = "rdp"


class Accountant(ABC):
    """Turns a history of mechanisms into the ε it composes to at a given δ."""

    name: ClassVar[str]

    @abstractmethod
    def epsilon(self, mechanisms: Sequence[Mechanism], delta: float) -> float:
        """ε of the composition of ``mechanisms`` at ``delta`` (0.0 for an empty history)."""


ACCOUNTANTS: dict[str, type[Accountant]] = {}


def register_accountant(cls: type[Accountant]) -> type[Accountant]:
    """Class decorator: make an accountant available by its ``name``."""
    ACCOUNTANTS[cls.name] = cls
    return cls


def get_accountant(name: str = DEFAULT_ACCOUNTANT) -> Accountant:
    try:
        return ACCOUNTANTS[name]()
    except KeyError as exc:
        raise ValueError(f"unknown accountant {name!r}; known: {', '.join(sorted(ACCOUNTANTS))}") from exc


def _check_delta(delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"δ must be in (0, 1), got {delta}")


@register_accountant
class RdpAccountant(Accountant):
    """Rényi DP with Opacus' analysis over the fixed ``RDP_ORDERS``: exact composition, closed form."""

    name = "rdp"

    def epsilon(self, mechanisms: Sequence[Mechanism], delta: float) -> float:
        _check_delta(delta)
        return epsilon_from_rdp(rdp_curve(mechanisms), delta)


@register_accountant
class PrvAccountant(Accountant):
    """Privacy-loss random variables (Gopi et al. 2021) with Opacus' implementation; ε upper bound.

    A Gaussian query is the subsampled Gaussian at rate 1.
    """

    name = "prv"
    eps_error: ClassVar[float] = 0.01

    def epsilon(self, mechanisms: Sequence[Mechanism], delta: float) -> float:
        _check_delta(delta)
        from opacus.accountants.prv import PRVAccountant

        history: list[tuple[float, float, int]] = []
        for mechanism in merge_repeats(mechanisms):
            rate = getattr(mechanism, "sample_rate", 1.0)
            repeats = getattr(mechanism, "steps", None) or getattr(mechanism, "count", 1)
            history.append((mechanism.noise_multiplier, rate, int(repeats)))
        if not history:
            return 0.0
        prv = PRVAccountant()
        prv.history = history
        with np.errstate(divide="ignore"):  # log(1 - q) at q = 1 is -inf by design in Opacus' PRV
            return float(prv.get_epsilon(delta=delta, eps_error=self.eps_error))


def compose_epsilon(
    mechanisms: Sequence[Mechanism], delta: float, *, accountant: str = DEFAULT_ACCOUNTANT
) -> float:
    """ε the whole history composes to at ``delta``."""
    return get_accountant(accountant).epsilon(list(mechanisms), delta)


def account_delta(mechanisms: Iterable[Mechanism], default: float | None = None) -> float:
    """The account's δ: the smallest δ recorded in it (``default`` for an empty account)."""
    deltas = [mechanism.delta for mechanism in mechanisms]
    if deltas:
        return min(deltas)
    if default is None:
        raise ValueError("an empty account has no δ; pass a default")
    return default


def would_exceed(
    history: Sequence[Mechanism],
    new: Mechanism,
    cap: float,
    delta: float,
    *,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> tuple[bool, float]:
    """Would adding ``new`` make the account compose past ``cap``? Returns (refuse, ε with ``new``).

    ``delta`` is the account's δ; it must be no larger than ``new.delta`` (see ``account_delta``).
    """
    epsilon = compose_epsilon([*history, new], delta, accountant=accountant)
    return epsilon > cap, epsilon
