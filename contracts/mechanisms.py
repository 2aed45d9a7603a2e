"""Privacy mechanisms as the ledger records them (the JSON shapes of docs/CONTRACTS.md).

A mechanism is what a node actually ran, with the parameters an accountant needs to compose it:
the noise multiplier σ (noise std / L2 sensitivity), the Poisson sample rate q and the number of
steps for DP-SGD, the number of releases for Gaussian queries, and the δ the node targeted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# Bounds on what any mechanism may claim, whatever the grant (a grant may only tighten them). They keep
# every parameter where the RDP analysis is numerically sound (σ = 1e6 with 2^53 steps made it return
# ε = −5 770, which cancelled every cap) and far beyond any real use: DP-SGD runs thousands of steps,
# a federated query a few hundred releases, σ a few units (queries: a few hundred).
MAX_NOISE_MULTIPLIER = 1e4
MAX_STEPS = 10_000_000
MAX_COUNT = 1_000_000
MIN_DELTA = 1e-30
MAX_DELTA = 0.01


class _MechanismBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    noise_multiplier: float = Field(gt=0.0, le=MAX_NOISE_MULTIPLIER, allow_inf_nan=False)
    delta: float = Field(ge=MIN_DELTA, le=MAX_DELTA, allow_inf_nan=False)


class SubsampledGaussian(_MechanismBase):
    """DP-SGD: ``steps`` Poisson-subsampled Gaussian steps at rate ``sample_rate``."""

    kind: Literal["subsampled_gaussian"] = "subsampled_gaussian"
    sample_rate: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    steps: int = Field(ge=1, le=MAX_STEPS)


class GaussianQuery(_MechanismBase):
    """``count`` Gaussian releases over the whole dataset (no subsampling), σ relative to L2 sensitivity."""

    kind: Literal["gaussian"] = "gaussian"
    count: int = Field(default=1, ge=1, le=MAX_COUNT)


Mechanism = Annotated[SubsampledGaussian | GaussianQuery, Field(discriminator="kind")]

MECHANISM_ADAPTER: TypeAdapter[SubsampledGaussian | GaussianQuery] = TypeAdapter(Mechanism)


def parse_mechanism(data: object) -> SubsampledGaussian | GaussianQuery:
    """Validate a mechanism's JSON object (raises pydantic's ``ValidationError`` naming the field)."""
    return MECHANISM_ADAPTER.validate_python(data)
