"""σ is calibrated for the whole study at a site, all rounds composed."""

import math

import pytest
from opacus.accountants import RDPAccountant

from node_agent.dp_plan import PrivacyPlanError, epsilon_spent, plan_study, site_delta


def _plan(**overrides):
    values = dict(
        n_train=5000,
        batch_size=250,
        local_epochs=2,
        rounds=4,
        target_epsilon=2.0,
        delta=1e-6,
        max_grad_norm=1.0,
    )
    values.update(overrides)
    return plan_study(**values)


def test_all_rounds_of_the_study_compose_to_at_most_the_target():
    plan = _plan()
    history = [(plan.noise_multiplier, plan.sample_rate, plan.steps_per_round)] * plan.rounds
    spent = epsilon_spent(history, plan.delta)
    assert spent <= plan.target_epsilon
    assert spent > 0.95 * plan.target_epsilon  # calibrated, not wastefully noisy


def test_more_rounds_for_the_same_target_need_more_noise():
    assert _plan(rounds=8).noise_multiplier > _plan(rounds=2).noise_multiplier


def test_recorded_mechanism_matches_what_opacus_composes():
    plan = _plan()
    accountant = RDPAccountant()
    accountant.history = [(plan.noise_multiplier, plan.sample_rate, plan.steps_per_round)] * plan.rounds
    history = [(plan.noise_multiplier, plan.sample_rate, plan.steps_per_round)] * plan.rounds
    assert epsilon_spent(history, plan.delta) == pytest.approx(accountant.get_epsilon(plan.delta))
    mechanism = plan.round_mechanism()
    assert mechanism["kind"] == "subsampled_gaussian" and mechanism["steps"] == plan.steps_per_round


def test_delta_follows_the_one_over_ten_n_rule():
    assert site_delta(1e-5, 1000) == 1e-5  # the requested δ is already below 1/(10·n)
    assert site_delta(1e-5, 1_000_000) == pytest.approx(1e-7)
    with pytest.raises(PrivacyPlanError):
        site_delta(1e-5, 0)


def test_a_partition_too_small_is_refused_with_its_size():
    with pytest.raises(PrivacyPlanError, match="40 training records"):
        _plan(n_train=40)


def test_infinite_epsilon_means_no_noise():
    plan = _plan(target_epsilon=math.inf)
    assert not plan.private and plan.noise_multiplier == 0.0


def test_a_mixed_history_composes_as_an_independent_accountant_does():
    """Rounds, a size release and evaluations interleaved, as a site's record keeps them; repeated
    (σ, q) entries are composed once with their steps summed. dp-accounting composes each event on
    its own, on the same orders (its ε conversion differs from Opacus' in the fifth digit)."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    history = [(1.1, 0.05, 40), (1.1, 0.05, 40), (3.0, 0.001, 1), (1.1, 0.05, 40), (5.0, 1.0, 3)]
    independent = RdpAccountant(orders=RDPAccountant.DEFAULT_ALPHAS)
    for sigma, q, steps in history:
        gaussian = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
        independent.compose(dp_accounting.SelfComposedDpEvent(gaussian, steps))
    expected = independent.get_epsilon(1e-5)
    assert epsilon_spent(history, 1e-5) == pytest.approx(expected, rel=1e-4)
    assert epsilon_spent(list(reversed(history)), 1e-5) == pytest.approx(expected, rel=1e-4)
    assert epsilon_spent(history[:2], 1e-5) == pytest.approx(epsilon_spent([(1.1, 0.05, 80)], 1e-5))


def test_a_release_without_noise_or_with_an_unreadable_record_is_not_counted_as_free():
    """A round record saying σ = 0 (or NaN, which JSON lets through) was left out of the sum: a
    node's budget check then let a noise-free round through under a finite target."""
    rounds = [(1.1, 0.05, 40)]
    assert math.isinf(epsilon_spent([*rounds, (0.0, 0.05, 40)], 1e-5))
    assert math.isinf(epsilon_spent([*rounds, (float("nan"), 0.05, 40)], 1e-5))
    assert math.isinf(epsilon_spent([*rounds, (1.1, float("nan"), 40)], 1e-5))
    assert epsilon_spent([*rounds, (0.0, 0.05, 0)], 1e-5) == epsilon_spent(rounds, 1e-5)  # no step taken


def test_a_node_refuses_a_round_whose_mechanism_adds_no_noise(tmp_path):
    from node_agent.declined import NodeDeclined
    from node_agent.round_record import RoundRecord

    record = RoundRecord(tmp_path, "study-1")
    noiseless = {"kind": "subsampled_gaussian", "noise_multiplier": 0.0, "sample_rate": 0.05, "steps": 40}
    with pytest.raises(NodeDeclined, match="round_over_budget"):
        record.claim(1, rounds_granted=2, mechanism=noiseless, target_epsilon=3.0, delta=1e-5, remembered=[])
