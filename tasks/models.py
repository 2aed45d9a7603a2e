"""Model factories shared by coordinator and nodes.

Only layers Opacus can compute per-sample gradients for (Linear, ReLU): no BatchNorm, whose
statistics mix records and so break the per-record privacy unit.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_features: int, hidden: tuple[int, ...] = (64, 32), seed: int = 0) -> nn.Module:
    """A small binary classifier returning one logit per record; seeded so every party starts equal."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, 1))
    model = nn.Sequential(*layers)
    torch.random.set_rng_state(generator_state)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under Opacus' GradSampleModule wrapper (its state-dict keys carry `_module.`)."""
    return getattr(model, "_module", model)
