"""Compose a dataset account's history of mechanisms into one ε, and refuse what would pass its cap.

Opacus' shape: ``Accountant`` is the interface, ``ACCOUNTANTS`` the registry (``register_accountant``
refuses to replace a name silently), and the analysis behind each one is pure functions
(``ledger.analysis`` for RDP, dp-accounting's PLD for ``PldAccountant``). ``RdpAccountant`` (Opacus'
RDP analysis loaded without torch) is the one the ledger decides with; ``PldAccountant`` (privacy
loss distributions, dp-accounting) is tighter and is reported beside it, so an auditor sees how much
the RDP books over-state. The ledger never sums per-round ε: it composes the whole history, across
rounds and across studies, which is both correct and far less wasteful.

δ of an account: the smallest δ any of its mechanisms targeted (``account_delta``), i.e. the
strictest promise made on that dataset; ε is always reported at that δ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from trust_broker.ledger.analysis import epsilon_from_rdp, merge_repeats, rdp_curve
from trust_broker.ledger.mechanisms import Mechanism, SubsampledGaussian

DEFAULT_ACCOUNTANT = "rdp"


class Accountant(ABC):
    """Turns a history of mechanisms into the ε it composes to at a given δ."""

    name: ClassVar[str]

    @abstractmethod
    def epsilon(self, mechanisms: Sequence[Mechanism], delta: float) -> float:
        """ε of the composition of ``mechanisms`` at ``delta`` (0.0 for an empty history)."""


ACCOUNTANTS: dict[str, type[Accountant]] = {}


class AccountantRegistryError(ValueError):
    """A second accountant under a name already taken: replacing one must be explicit."""


def register_accountant(cls: type[Accountant] | None = None, *, replace: bool = False) -> Any:
    """Class decorator: make an accountant available by its ``name``; never silently replace one
    (``replace=True`` says it is meant, e.g. in a test)."""

    def register(accountant: type[Accountant]) -> type[Accountant]:
        if not replace and accountant.name in ACCOUNTANTS and ACCOUNTANTS[accountant.name] is not accountant:
            raise AccountantRegistryError(
                f"an accountant named {accountant.name!r} is already registered "
                f"({ACCOUNTANTS[accountant.name].__qualname__}); pass replace=True to replace it"
            )
        ACCOUNTANTS[accountant.name] = accountant
        return accountant

    return register if cls is None else register(cls)


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
class PldAccountant(Accountant):
    """Privacy loss distributions with dp-accounting (Koskela et al.; Doroshenko et al. 2022): a
    tighter ε than RDP's, reported beside it (never the one the ledger decides with: numerical,
    slower). A Gaussian query is the subsampled Gaussian at rate 1."""

    name = "pld"
    value_discretization_interval: ClassVar[float] = 1e-3

    def epsilon(self, mechanisms: Sequence[Mechanism], delta: float) -> float:
        _check_delta(delta)
        from dp_accounting import dp_event
        from dp_accounting.pld import pld_privacy_accountant

        events = []
        for mechanism in merge_repeats(mechanisms):
            if isinstance(mechanism, SubsampledGaussian):
                rate, repeats = mechanism.sample_rate, mechanism.steps
            else:
                rate, repeats = 1.0, mechanism.count
            one: dp_event.DpEvent = dp_event.GaussianDpEvent(mechanism.noise_multiplier)
            if rate < 1.0:
                one = dp_event.PoissonSampledDpEvent(rate, one)
            events.append(dp_event.SelfComposedDpEvent(one, repeats))
        if not events:
            return 0.0
        accountant = pld_privacy_accountant.PLDAccountant(
            value_discretization_interval=self.value_discretization_interval
        )
        accountant.compose(dp_event.ComposedDpEvent(events))
        return max(0.0, float(accountant.get_epsilon(delta)))


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
