"""Per-record clipping through `train_round` itself, in every grad-sample mode the node may use.

Plain SGD, σ = 0, q = 1 (every record in the one batch): the update is then exactly
lr · Σᵢ clip(gᵢ, C) / n, so the summed clipped gradient can be read back from the weights and
compared with per-sample clipping done by hand; adding one record must move it by at most C.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from node_agent.dp_plan import DpPlan
from node_agent.dp_release import NodeRandomness
from node_agent.training import train_round
from tasks.models import mlp

C = 0.1
LR = 0.5
MODES = ("hooks", "ghost", "functorch")


def _plan() -> DpPlan:
    """One full-batch step with no noise, yet private (clipping on): finite ε, σ = 0, q = 1."""
    return DpPlan(
        noise_multiplier=0.0,
        sample_rate=1.0,
        steps_per_epoch=1,
        local_epochs=1,
        rounds=1,
        delta=1e-5,
        target_epsilon=1.0,
        max_grad_norm=C,
        records=40.0,  # the released size the step's noisy sum is divided by (q × it)
    )


def _data(n: int = 40, width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = (3.0 * rng.normal(size=(n, width))).astype(np.float32)
    y = rng.integers(0, 2, size=n).astype(np.float32)
    return x, y


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _summed_clipped_gradient(x: np.ndarray, y: np.ndarray, mode: str) -> torch.Tensor:
    """Σᵢ clip(gᵢ) as `train_round` applied it, read back from one SGD step."""
    model = mlp(x.shape[1], (8,), seed=1)
    before = _flat(model)
    train_round(
        model,
        x,
        y,
        _plan(),
        learning_rate=LR,
        randomness=NodeRandomness(),
        grad_sample_mode=mode,
        optimizer_name="sgd",
    )
    return (before - _flat(model)) * _plan().expected_batch / LR


def _by_hand(x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    model = mlp(x.shape[1], (8,), seed=1)
    total = torch.zeros_like(_flat(model))
    for xi, yi in zip(torch.from_numpy(x), torch.from_numpy(y), strict=True):
        model.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xi[None]).reshape(1), yi[None])
        loss.backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        total += g * min(1.0, C / float(g.norm()))
    return total


@pytest.mark.parametrize("mode", MODES)
def test_summed_gradient_is_the_sum_of_per_record_clipped_gradients(mode):
    x, y = _data()
    released = _summed_clipped_gradient(x, y, mode)
    expected = _by_hand(x, y)
    assert torch.allclose(released, expected, rtol=1e-3, atol=1e-5), (
        f"{mode}: summed gradient {float(released.norm()):.4g}, clipped by hand {float(expected.norm()):.4g}"
    )


@pytest.mark.parametrize("mode", MODES)
def test_one_added_record_moves_the_summed_gradient_by_at_most_c(mode):
    x, y = _data()
    without = _summed_clipped_gradient(x[:-1], y[:-1], mode)
    with_one = _summed_clipped_gradient(x, y, mode)
    moved = float((with_one - without).norm())
    assert moved <= C * (1 + 1e-3), f"{mode}: one record moved the summed gradient by {moved:.4g} > C = {C}"
