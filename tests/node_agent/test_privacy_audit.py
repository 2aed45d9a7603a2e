"""Empirical privacy audit: a curious coordinator tries to tell whether a canary record was at a site.

Two-run membership test (the "two-run" audit of Jagielski et al. 2020 / Nasr et al. 2021) with
Clopper-Pearson bounds: the node trains T times on the site's records with the canary and T
times without; the coordinator knows everything the protocol shows it — the records other than
the canary, the canary, the initial weights, the hyper-parameters and the instructions' seed —
but not the node's own randomness. It re-trains both worlds itself and guesses the world whose
weights are nearer the released ones. From its true- and false-positive rates, bounded at 95 %
confidence, ε ≥ ln((TPR − δ) / FPR) for any (ε, δ)-DP node; the test fails when that empirical
lower bound passes the ε the node claims.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import beta, norm

from node_agent.dp_plan import plan_study
from node_agent.dp_release import NodeRandomness
from node_agent.training import train_round
from tasks.models import mlp

CLAIMED_EPSILON = 1.0
DELTA = 1e-5
TRIALS = 100  # per world
INSTRUCTIONS_SEED = 42  # what the coordinator sends
LR = 0.05


def _site(n: int = 150, width: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, width)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    x[:, -1] = 0.0  # a field only the canary has: its gradient stands alone on those weights
    canary_x = np.full((1, width), 6.0, dtype=np.float32)  # far from everyone, and mislabelled
    canary_y = np.zeros(1, dtype=np.float32)
    return x, y, np.vstack([x, canary_x]), np.concatenate([y, canary_y])


def _flat(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().astype(np.float64)


def _clopper_pearson(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    low = 0.0 if successes == 0 else float(beta.ppf(alpha, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - alpha, successes + 1, trials - successes))
    return low, high


def epsilon_lower_bound(true_pos: int, false_pos: int, trials: int, delta: float) -> float:
    """ε any (ε, δ)-DP mechanism must have for these outcomes, at 95 % confidence (both tails)."""
    tpr_low, _ = _clopper_pearson(true_pos, trials, 0.025)
    _, fpr_high = _clopper_pearson(false_pos, trials, 0.025)
    bounds = [0.0]
    if tpr_low - delta > 0:  # TPR ≤ e^ε·FPR + δ
        bounds.append(math.log((tpr_low - delta) / fpr_high))
    if (1 - fpr_high) - delta > 0:  # TNR ≤ e^ε·FNR + δ
        bounds.append(math.log(((1 - fpr_high) - delta) / (1 - tpr_low)))
    return max(bounds)


def test_clopper_pearson_bound_is_the_textbook_one():
    # A perfect attack over 100 + 100 trials: TPR ≥ 0.025^(1/100), FPR ≤ 1 − 0.025^(1/100).
    perfect = 0.025**0.01
    assert math.isclose(epsilon_lower_bound(100, 0, 100, 0.0), math.log(perfect / (1 - perfect)))
    assert epsilon_lower_bound(50, 50, 100, 0.0) == 0.0


def _plan(epsilon: float = CLAIMED_EPSILON):
    """One full-batch step (q = 1): the canary's whole privacy loss in one Gaussian release."""
    return plan_study(
        n_train=150,
        batch_size=150,
        local_epochs=1,
        rounds=1,
        target_epsilon=epsilon,
        delta=DELTA,
        max_grad_norm=1.0,
    )


def _trained(x: np.ndarray, y: np.ndarray, plan, randomness: NodeRandomness, **how) -> np.ndarray:
    model = mlp(x.shape[1], (8,), seed=3)
    train_round(model, x, y, plan, learning_rate=how.pop("learning_rate", LR), randomness=randomness, **how)
    return _flat(model)


def audit(
    node_randomness, trials: int, epsilon: float = CLAIMED_EPSILON
) -> tuple[dict[str, tuple[int, int]], float]:
    """Run both worlds `trials` times at the node; score them with the coordinator's two attacks.

    Returns each attack's (true positives, false positives) and the best ε lower bound.
    Also run with more trials by benchmarks/federated/privacy_audit.py.
    """
    x_out, y_out, x_in, y_in = _site()
    plan = _plan(epsilon)
    initial = _flat(mlp(x_out.shape[1], (8,), seed=3))
    guess = NodeRandomness(reproducible_seed=INSTRUCTIONS_SEED)  # the only seed it could know

    # Attack 1 (replay): re-train both worlds with the instructions' seed; nearest world wins.
    replay_in = _trained(x_in, y_in, plan, guess)
    replay_out = _trained(x_out, y_out, plan, NodeRandomness(reproducible_seed=INSTRUCTIONS_SEED))

    # Attack 2 (likelihood ratio, the optimal test of one step): the noise-free summed clipped
    # gradient of each world, by the node's own code at σ = 0, plain SGD, lr = 1; Adam's first step
    # releases sign(G + N(0, σ²C²)) per coordinate.
    quiet = replace(plan, noise_multiplier=0.0)
    quiet_randomness = NodeRandomness(reproducible_seed=0)
    g_in = (
        initial - _trained(x_in, y_in, quiet, quiet_randomness, learning_rate=1.0, optimizer_name="sgd")
    ) * len(y_in)
    g_out = (
        initial - _trained(x_out, y_out, quiet, quiet_randomness, learning_rate=1.0, optimizer_name="sgd")
    ) * len(y_out)
    noise = plan.noise_multiplier * plan.max_grad_norm

    def replay_says_in(released: np.ndarray) -> bool:
        return float(np.sum((released - replay_in) ** 2)) < float(np.sum((released - replay_out) ** 2))

    def ratio_says_in(released: np.ndarray) -> bool:
        signs = np.sign(initial - released)
        return float(np.sum(norm.logcdf(signs * g_in / noise) - norm.logcdf(signs * g_out / noise))) > 0

    counts = {"replay": [0, 0], "likelihood ratio": [0, 0]}
    for world, (x, y) in enumerate(((x_in, y_in), (x_out, y_out))):
        for _ in range(trials):
            released = _trained(x, y, plan, node_randomness())
            counts["replay"][world] += replay_says_in(released)
            counts["likelihood ratio"][world] += ratio_says_in(released)
    bounds = {name: (tp, fp) for name, (tp, fp) in counts.items()}
    best = max(epsilon_lower_bound(tp, fp, trials, DELTA) for tp, fp in bounds.values())
    return bounds, best


def test_a_coordinator_cannot_tell_whether_the_canary_was_there():
    """The node's own randomness: the best attack's ε lower bound stays under the claimed ε."""
    outcomes, bound = audit(NodeRandomness, TRIALS)
    print(f"audit (secret randomness): {outcomes} of {TRIALS}, ε ≥ {bound:.2f}, claimed {CLAIMED_EPSILON}")
    assert bound <= CLAIMED_EPSILON, (
        f"empirical ε ≥ {bound:.2f} passes the claimed ε {CLAIMED_EPSILON}: {outcomes}"
    )


def test_the_audit_catches_a_node_whose_randomness_the_coordinator_knows():
    """What the node did before (seeded from the instructions): the same audit fails it."""
    outcomes, bound = audit(lambda: NodeRandomness(reproducible_seed=INSTRUCTIONS_SEED), 50)
    print(f"audit (instructions' seed): {outcomes} of 50, ε ≥ {bound:.2f}, claimed {CLAIMED_EPSILON}")
    assert bound > CLAIMED_EPSILON
