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

import numpy as np
import torch
from scipy.stats import beta

from node_agent.dp_plan import plan_study
from node_agent.dp_release import NodeRandomness
from node_agent.training import train_round
from tasks.models import mlp

CLAIMED_EPSILON = 1.0
DELTA = 1e-5
TRIALS = 100  # per world
INSTRUCTIONS_SEED = 42  # what the coordinator sends


def _site(n: int = 150, width: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, width)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
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


def test_a_coordinator_cannot_tell_whether_the_canary_was_there():
    x_out, y_out, x_in, y_in = _site()
    plan = plan_study(
        n_train=len(y_out),
        batch_size=len(y_out),
        local_epochs=1,
        rounds=1,
        target_epsilon=CLAIMED_EPSILON,
        delta=DELTA,
        max_grad_norm=1.0,
    )
    initial = mlp(x_out.shape[1], (8,), seed=3)

    def node_trains(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        model = mlp(x.shape[1], (8,), seed=3)
        train_round(model, x, y, plan, learning_rate=0.05, randomness=NodeRandomness())
        return _flat(model)

    # The coordinator's own re-runs of both worlds, with everything it knows.
    def coordinator_trains(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        model = mlp(x.shape[1], (8,), seed=3)
        model.load_state_dict(initial.state_dict())
        guess = NodeRandomness(reproducible_seed=INSTRUCTIONS_SEED)  # the only seed it could know
        train_round(model, x, y, plan, learning_rate=0.05, randomness=guess)
        return _flat(model)

    guess_in, guess_out = coordinator_trains(x_in, y_in), coordinator_trains(x_out, y_out)

    def says_in(released: np.ndarray) -> bool:
        return float(np.sum((released - guess_in) ** 2)) < float(np.sum((released - guess_out) ** 2))

    true_pos = sum(says_in(node_trains(x_in, y_in)) for _ in range(TRIALS))
    false_pos = sum(says_in(node_trains(x_out, y_out)) for _ in range(TRIALS))
    bound = epsilon_lower_bound(true_pos, false_pos, TRIALS, DELTA)
    print(f"audit: TPR {true_pos}/{TRIALS}, FPR {false_pos}/{TRIALS}, ε ≥ {bound:.2f} ≤? {CLAIMED_EPSILON}")
    assert bound <= CLAIMED_EPSILON, (
        f"empirical ε lower bound {bound:.2f} passes the claimed ε {CLAIMED_EPSILON} "
        f"(TPR {true_pos}/{TRIALS}, FPR {false_pos}/{TRIALS})"
    )
