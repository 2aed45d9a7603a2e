"""Local training with DP-SGD (Opacus) and local evaluation.

Three things make the update a DP release and not just a noisy one (issue 10):
  * each record's gradient is clipped: the model returns one logit per record, (B,), and the
    labels are (B,), so Opacus' per-record clip factors multiply per-record losses — with (B, 1)
    they broadcast to (B, B) and ghost clipping clipped nothing;
  * the Poisson masks and the noise come from :class:`NodeRandomness`, seeded at the node from
    the OS CSPRNG, never from the coordinator's instructions; noise is drawn the way Opacus'
    ``secure_mode`` draws it (a sum of Gaussians, against floating-point attacks);
  * the loader takes exactly the recorded steps at exactly the recorded sample rate, whatever
    the table's size (Opacus' own ``int(1 / q)`` loses a step at e.g. q = 1/93).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from opacus import PrivacyEngine
from opacus.data_loader import DPDataLoader
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.models import unwrap

from .dp_plan import DpPlan
from .dp_release import NodeRandomness

#: Opacus' per-sample gradient engine. Ghost clipping never materialises per-sample gradients,
#: which keeps DP overhead lowest on the small MLPs used here (benchmarks/results/adult_*.json).
DEFAULT_GRAD_SAMPLE_MODE = "ghost"
#: The engines the node accepts; each is checked against clipping by hand (tests/node_agent/test_clipping.py).
GRAD_SAMPLE_MODES = ("ghost", "hooks", "functorch")
OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


class InclusionSampler(UniformWithReplacementSampler):  # type: ignore[misc]
    """Poisson batches in which record i is included with probability q·w_i, w_i ∈ (0, 1].

    Why the ledger's q still bounds ε: for neighbouring tables that differ by record i, the other
    records are drawn independently of i and identically in both, so the round's privacy loss is
    that of a Gaussian subsampled at i's own rate p_i = q·w_i; the subsampled Gaussian's RDP at
    every order only grows with the sampling rate, so p_i ≤ q gives at most the RDP the accountant
    computes at q. Weights above 1 would break that bound: they are refused. (With reweighing the
    weights come from group × outcome counts: see ``node_agent.reweighing`` for what that leaves.)
    Draws come from the node's generator (``NodeRandomness``), as for the unweighted masks.
    """

    def __init__(
        self, *, probabilities: torch.Tensor, steps: int, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(
            num_samples=len(probabilities),
            sample_rate=float(probabilities.max()),
            generator=generator,
            steps=steps,
        )
        self.probabilities = probabilities

    def __iter__(self):  # type: ignore[no-untyped-def]
        for _ in range(self.steps):
            mask = torch.rand(self.num_samples, generator=self.generator) < self.probabilities
            yield mask.nonzero(as_tuple=False).reshape(-1).tolist()


def inclusion_probabilities(sample_rate: float, weights: np.ndarray, records: int) -> torch.Tensor:
    """q·w_i per record; weights must be in (0, 1] (normalise by their largest value)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != records:
        raise ValueError(f"{len(w)} inclusion weights for {records} records")
    if not (np.all(np.isfinite(w)) and np.all(w > 0.0) and np.all(w <= 1.0)):
        raise ValueError("inclusion weights must lie in (0, 1]: a record drawn more often than q breaks ε")
    return torch.from_numpy(sample_rate * w)


@dataclass(frozen=True)
class RoundOutcome:
    steps: int
    #: Mean training loss over the round's batches. It stays at the node: it is not a DP release.
    mean_loss: float


def train_round(
    model: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    plan: DpPlan,
    *,
    learning_rate: float,
    randomness: NodeRandomness,
    grad_sample_mode: str = DEFAULT_GRAD_SAMPLE_MODE,
    optimizer_name: str = "adam",
    inclusion_weights: np.ndarray | None = None,
) -> RoundOutcome:
    """Train `model` in place for one round of `plan.local_epochs` epochs; DP-SGD when the plan is private.

    Private: every step Poisson-samples each record with the plan's rate (recorded at the ledger),
    for the plan's steps per epoch, even if opt-outs removed records since the plan was made.
    ``inclusion_weights`` (w_i ∈ (0, 1], e.g. reweighing) lower record i's rate to q·w_i.
    """
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(
            f"grad-sample mode {grad_sample_mode!r} is not one of {', '.join(GRAD_SAMPLE_MODES)}"
        )
    if len(labels) == 0:
        raise ValueError("no training record")
    trained = copy.deepcopy(model)  # Opacus hooks the module it wraps; keep the caller's plain.
    trained.train()
    dataset = TensorDataset(
        torch.from_numpy(np.array(features, dtype=np.float32)),  # a copy: the caller's may be read-only
        torch.from_numpy(np.array(labels, dtype=np.float32).reshape(-1)),
    )
    optimizer: torch.optim.Optimizer = OPTIMIZERS[optimizer_name](trained.parameters(), lr=learning_rate)
    # Summed, not averaged: a Poisson batch may be empty, and the mean of nothing is NaN. Both
    # paths divide by the *expected* batch size instead (below).
    criterion: nn.Module = nn.BCEWithLogitsLoss(reduction="sum")
    module: nn.Module = trained
    # Private or not, the same sampling: each step Poisson-samples records at the plan's rate, for
    # exactly the plan's steps (set explicitly: Opacus' default int(1/q) loses one at q = 1/93).
    loader: DataLoader[tuple[torch.Tensor, ...]] = DPDataLoader(
        dataset, sample_rate=plan.sample_rate, generator=randomness.torch()
    )
    loader.batch_sampler.steps = plan.steps_per_epoch  # type: ignore[union-attr]
    # q × the released size: never a function of the exact count (nor, with reweighing, of the weights).
    expected_batch = plan.expected_batch
    if inclusion_weights is not None:
        rates = inclusion_probabilities(plan.sample_rate, inclusion_weights, len(dataset))
        sampler = InclusionSampler(
            probabilities=rates, steps=plan.steps_per_epoch, generator=randomness.torch()
        )
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=loader.collate_fn)
    if plan.private:
        with warnings.catch_warnings():
            # Opacus warns that secure_mode is off: its CSPRNG (torchcsprng) does not exist for this
            # torch; the generators come from NodeRandomness instead, and noise is drawn as below.
            warnings.simplefilter("ignore")
            private = PrivacyEngine(accountant="rdp").make_private(
                module=trained,
                optimizer=optimizer,
                criterion=criterion,
                data_loader=loader,
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=plan.max_grad_norm,
                poisson_sampling=False,  # the loader above already samples, with the node's generator
                loss_reduction="sum",
                grad_sample_mode=grad_sample_mode,
                noise_generator=randomness.torch(),
            )
        # Ghost clipping also wraps the criterion (two backward passes); other modes return three objects.
        module, optimizer, loader = private[0], private[1], private[-1]
        if len(private) == 4:
            criterion = private[2]
        # Opacus' secure_mode noise draw (a sum of Gaussians, against floating-point attacks).
        optimizer.secure_mode = True  # type: ignore[attr-defined]
        # Per-record gradients of the summed loss are clipped and summed; the noisy sum is then
        # divided by the plan's expected batch size q·ñ (ñ the released size), as with Opacus' "mean"
        # reduction — which would divide by q·n, exact, rounded down to an int (0 when n < 1/q).
        optimizer.loss_reduction = "mean"  # type: ignore[attr-defined]
        optimizer.expected_batch_size = expected_batch  # type: ignore[attr-defined]
    module.train()
    steps, total_loss, batches_with_loss = 0, 0.0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(plan.local_epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(module(x).reshape(-1), y)
                if not plan.private:
                    loss = loss / expected_batch
                loss.backward()
                optimizer.step()
                steps += 1
                if len(y):
                    total_loss += float(loss.detach()) * (1 if plan.private else expected_batch) / len(y)
                    batches_with_loss += 1
    if steps != plan.steps_per_round:
        raise RuntimeError(f"DP-SGD took {steps} steps where the plan recorded {plan.steps_per_round}")
    model.load_state_dict(unwrap(module).state_dict())
    return RoundOutcome(steps=steps, mean_loss=total_loss / max(batches_with_loss, 1))


@torch.no_grad()
def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """Probabilities of the positive outcome."""
    model.eval()
    return torch.sigmoid(model(torch.from_numpy(features)).reshape(-1)).numpy()
