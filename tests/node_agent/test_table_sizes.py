"""No table size or batch size crashes DP-SGD, and the steps run are the steps recorded.

Opacus' own loader takes ``int(1 / q)`` steps, one fewer than recorded when 1/q is not exact in
floating point (q = 1/93 gives 92): the round crashed after training, with ε reserved. Tables
that shrank since the plan (opt-outs) and batches that come out empty under Poisson sampling
are drawn here too.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node_agent.dp_plan import plan_study
from node_agent.dp_release import NodeRandomness
from node_agent.training import GRAD_SAMPLE_MODES, train_round
from tasks.models import mlp


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_train=st.integers(100, 1000),
    batches=st.integers(1, 60),
    opted_out=st.integers(0, 30),
    local_epochs=st.integers(1, 2),
    mode=st.sampled_from(GRAD_SAMPLE_MODES),
    epsilon=st.sampled_from([0.5, 3.0, float("inf")]),
)
@example(n_train=930, batches=93, opted_out=0, local_epochs=1, mode="ghost", epsilon=3.0)
@example(n_train=100, batches=60, opted_out=30, local_epochs=1, mode="ghost", epsilon=3.0)
def test_any_size_trains_for_exactly_the_recorded_steps(
    n_train, batches, opted_out, local_epochs, mode, epsilon
):
    batch_size = -(-n_train // batches)
    plan = plan_study(
        n_train=n_train,
        batch_size=batch_size,
        local_epochs=local_epochs,
        rounds=2,
        target_epsilon=epsilon,
        delta=1e-5,
        max_grad_norm=1.0,
    )
    n = n_train - opted_out  # records removed since the plan was made
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = mlp(3, (4,))
    outcome = train_round(
        model, x, y, plan, learning_rate=0.01, randomness=NodeRandomness(), grad_sample_mode=mode
    )
    assert outcome.steps == plan.steps_per_round
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())
