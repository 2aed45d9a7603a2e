"""DP-SGD at a node learns, takes exactly the recorded steps, and leaves a plain model behind."""

import numpy as np
import pytest

from node_agent.dp_plan import plan_study
from node_agent.dp_release import NodeRandomness
from node_agent.training import predict, train_round
from tasks.metrics import binary_metrics
from tasks.models import mlp


def _plan(local_epochs: int = 1):
    """A one-round plan for 2 000 records at ε = 3."""
    return plan_study(
        n_train=2000,
        batch_size=200,
        local_epochs=local_epochs,
        rounds=1,
        target_epsilon=3.0,
        delta=1e-5,
        max_grad_norm=1.0,
    )


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=3000) > 0).astype(np.float32)
    return x, y


def test_dp_training_learns_a_clear_signal(separable):
    x, y = separable
    plan = _plan(local_epochs=2)
    model = mlp(8, (16,))
    before = binary_metrics(y[2000:], predict(model, x[2000:]))["auc"]
    outcome = train_round(model, x[:2000], y[:2000], plan, learning_rate=0.02, randomness=NodeRandomness())
    after = binary_metrics(y[2000:], predict(model, x[2000:]))["auc"]
    assert outcome.steps == plan.steps_per_round
    assert after > 0.85 and after > before + 0.1


def test_training_returns_a_plain_module_with_the_same_keys(separable):
    x, y = separable
    plan = _plan(local_epochs=1)
    model = mlp(8, (16,))
    keys = list(model.state_dict())
    train_round(model, x[:2000], y[:2000], plan, learning_rate=0.02, randomness=NodeRandomness())
    assert list(model.state_dict()) == keys and not hasattr(model, "_module")
    train_round(
        model, x[:2000], y[:2000], plan, learning_rate=0.02, randomness=NodeRandomness()
    )  # hooks never stack


def test_fewer_records_after_opt_outs_keep_the_recorded_sample_rate(separable):
    x, y = separable
    plan = _plan(local_epochs=1)
    outcome = train_round(
        mlp(8, (16,)), x[:1950], y[:1950], plan, learning_rate=0.02, randomness=NodeRandomness()
    )
    assert outcome.steps == plan.steps_per_round
