"""The non-federated anchors of the federated benchmarks: one dataset trained on its own."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from node_agent.dp_plan import plan_study, site_delta
from node_agent.dp_release import NodeRandomness
from node_agent.training import train_round
from tasks.models import mlp
from tasks.registry import get_task


def train_alone(
    task: str, x: np.ndarray, y: np.ndarray, epsilon: float, args: argparse.Namespace
) -> torch.nn.Module:
    """A site (or the pooled data) trained alone for as many epochs as the federation runs, under the
    same DP accounting a node uses (ε = inf: no noise)."""
    model = mlp(x.shape[1], get_task(task).hidden, seed=args.seed)
    plan = plan_study(
        n_train=len(y),
        batch_size=args.batch_size,
        local_epochs=args.local_epochs,
        rounds=args.rounds,
        target_epsilon=epsilon,
        delta=site_delta(args.delta, len(y)),
        max_grad_norm=args.max_grad_norm,
    )
    for _ in range(args.rounds):
        train_round(model, x, y, plan, learning_rate=args.learning_rate, randomness=NodeRandomness())
    return model
