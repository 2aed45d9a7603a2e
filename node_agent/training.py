"""Local training with DP-SGD (Opacus) and local evaluation."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.models import unwrap

from .dp_plan import DpPlan

#: Opacus' per-sample gradient engine. Ghost clipping never materialises per-sample gradients,
#: which keeps DP overhead lowest on the small MLPs used here (benchmarks/results/adult_*.json).
DEFAULT_GRAD_SAMPLE_MODE = "ghost"


@dataclass(frozen=True)
class RoundOutcome:
    steps: int
    mean_loss: float


def train_round(
    model: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    plan: DpPlan,
    *,
    learning_rate: float,
    seed: int,
    grad_sample_mode: str = DEFAULT_GRAD_SAMPLE_MODE,
) -> RoundOutcome:
    """Train `model` in place for one round of `plan.local_epochs` epochs; DP-SGD when the plan is private.

    The batch size is derived from the plan so that Opacus' Poisson sample rate (1 / batches per
    epoch) stays the one calibrated and recorded, even if opt-outs removed records since.
    """
    torch.manual_seed(seed)
    trained = copy.deepcopy(model)  # Opacus hooks the module it wraps; keep the caller's plain.
    trained.train()
    dataset = TensorDataset(torch.from_numpy(features), torch.from_numpy(labels).reshape(-1, 1))
    batch_size = max(1, math.ceil(len(dataset) / plan.steps_per_epoch))
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    optimizer: torch.optim.Optimizer = torch.optim.Adam(trained.parameters(), lr=learning_rate)
    criterion: nn.Module = nn.BCEWithLogitsLoss()
    module: nn.Module = trained
    if plan.private:
        with warnings.catch_warnings():
            # Opacus warns about its non-cryptographic RNG and full backward hooks; both are known here.
            warnings.simplefilter("ignore")
            private = PrivacyEngine(accountant="rdp").make_private(
                module=trained,
                optimizer=optimizer,
                criterion=criterion,
                data_loader=loader,
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=plan.max_grad_norm,
                poisson_sampling=True,
                grad_sample_mode=grad_sample_mode,
            )
        # Ghost clipping also wraps the criterion (two backward passes); other modes return three objects.
        module, optimizer, loader = private[0], private[1], private[-1]
        if len(private) == 4:
            criterion = private[2]
    module.train()
    steps, total_loss = 0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(plan.local_epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(module(x), y)
                loss.backward()
                optimizer.step()
                steps += 1
                total_loss += float(loss.detach())
    if plan.private and steps != plan.steps_per_round:
        raise RuntimeError(f"DP-SGD took {steps} steps where the plan recorded {plan.steps_per_round}")
    model.load_state_dict(unwrap(module).state_dict())
    return RoundOutcome(steps=steps, mean_loss=total_loss / max(steps, 1))


@torch.no_grad()
def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """Probabilities of the positive outcome."""
    model.eval()
    return torch.sigmoid(model(torch.from_numpy(features)).reshape(-1)).numpy()
