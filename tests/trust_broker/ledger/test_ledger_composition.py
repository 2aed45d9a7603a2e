"""Composition of an account's history into ε, checked against Opacus' own accountant."""

from __future__ import annotations

import pytest
from opacus.accountants import RDPAccountant

from trust_broker.ledger import (
    ACCOUNTANTS,
    GaussianQuery,
    SubsampledGaussian,
    account_delta,
    compose_epsilon,
    would_exceed,
)

DELTA = 1e-6
ROUND = SubsampledGaussian(noise_multiplier=1.1, sample_rate=0.01, steps=200, delta=DELTA)


def test_epsilon_grows_with_every_round() -> None:
    epsilons = [compose_epsilon([ROUND] * rounds, DELTA) for rounds in range(1, 6)]
    assert all(later > earlier for earlier, later in zip(epsilons, epsilons[1:], strict=False))


def test_homogeneous_history_equals_opacus_rdp_accountant() -> None:
    opacus = RDPAccountant()
    for _ in range(5 * ROUND.steps):
        opacus.step(noise_multiplier=ROUND.noise_multiplier, sample_rate=ROUND.sample_rate)
    # Never below what the node's Opacus accountant says (the ledger takes dp-accounting's bound where
    # it is larger), and close to it where the nodes work (small q).
    ours, theirs = compose_epsilon([ROUND] * 5, DELTA), opacus.get_epsilon(DELTA)
    assert theirs * (1 - 1e-9) <= ours <= theirs * 1.001


def test_mixed_history_equals_opacus_on_the_same_history() -> None:
    query = GaussianQuery(noise_multiplier=8.0, count=20, delta=DELTA)
    other = SubsampledGaussian(noise_multiplier=0.8, sample_rate=0.05, steps=40, delta=DELTA)
    opacus = RDPAccountant()
    opacus.history = [(1.1, 0.01, 400), (8.0, 1.0, 20), (0.8, 0.05, 40)]
    ours = compose_epsilon([ROUND, query, ROUND, other], DELTA)
    theirs = opacus.get_epsilon(DELTA)
    assert theirs * (1 - 1e-9) <= ours <= theirs * 1.01


def test_composition_is_far_below_the_sum_of_per_round_epsilons() -> None:
    one = compose_epsilon([ROUND], DELTA)
    assert compose_epsilon([ROUND] * 10, DELTA) < 0.6 * (10 * one)


def test_reservation_past_the_cap_is_refused_and_below_is_accepted() -> None:
    history = [ROUND] * 3
    before = compose_epsilon(history, DELTA)
    refuse, after = would_exceed(history, ROUND, cap=before + 0.01, delta=DELTA)
    assert refuse and after > before + 0.01
    accept, same = would_exceed(history, ROUND, cap=after + 0.01, delta=DELTA)
    assert not accept and same == pytest.approx(after)


def test_a_smaller_delta_costs_more_epsilon() -> None:
    assert compose_epsilon([ROUND], 1e-9) > compose_epsilon([ROUND], 1e-5)


def test_account_delta_is_the_smallest_recorded() -> None:
    strict = ROUND.model_copy(update={"delta": 1e-8})
    assert account_delta([ROUND, strict, ROUND]) == 1e-8
    assert account_delta([], default=1e-6) == 1e-6
    with pytest.raises(ValueError, match="empty account"):
        account_delta([])


def test_accountants_are_found_by_name_and_pld_is_not_looser_than_rdp() -> None:
    assert {"rdp", "pld"} <= set(ACCOUNTANTS)
    rdp = compose_epsilon([ROUND] * 3, DELTA, accountant="rdp")
    pld = compose_epsilon([ROUND] * 3, DELTA, accountant="pld")
    assert 0.5 * rdp < pld <= rdp
    with pytest.raises(ValueError, match="known: pld, rdp"):
        compose_epsilon([ROUND], DELTA, accountant="moments")


def test_the_registry_refuses_a_silent_overwrite() -> None:
    from trust_broker.ledger.accountant import AccountantRegistryError, RdpAccountant, register_accountant

    class Impostor(RdpAccountant):
        name = "rdp"

    with pytest.raises(AccountantRegistryError, match="already registered"):
        register_accountant(Impostor)
    assert ACCOUNTANTS["rdp"] is RdpAccountant


def test_the_ledger_never_imports_torch() -> None:
    """Issue 17: the broker and the auditor compose without torch (a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import sys, trust_broker.ledger as l, trust_broker.audit.verify, trust_broker.store.sql;"
        "m = l.SubsampledGaussian(noise_multiplier=1, sample_rate=0.1, steps=3, delta=1e-6);"
        "l.compose_epsilon([m], 1e-6);"
        "print('torch' in sys.modules, 'opacus' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    # The broker's process: no torch, and not dp-accounting's PLD stack either (scipy.stats, 55 MB).
    broker = (
        "import sys, trust_broker.service.app; print('torch' in sys.modules, 'scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", broker], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_an_empty_history_spends_nothing() -> None:
    assert compose_epsilon([], DELTA) == 0.0
