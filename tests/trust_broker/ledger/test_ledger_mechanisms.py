"""Mechanism JSON as CONTRACTS.md writes it, and the validation that keeps nonsense out of the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trust_broker.ledger import GaussianQuery, SubsampledGaussian, parse_mechanism


def test_contract_shapes_parse_into_their_kind() -> None:
    sgd = parse_mechanism(
        {
            "kind": "subsampled_gaussian",
            "noise_multiplier": 1.1,
            "sample_rate": 0.01,
            "steps": 300,
            "delta": 1e-6,
        }
    )
    query = parse_mechanism({"kind": "gaussian", "noise_multiplier": 4.0, "count": 12, "delta": 1e-6})
    assert isinstance(sgd, SubsampledGaussian) and sgd.steps == 300
    assert isinstance(query, GaussianQuery) and query.count == 12


def test_a_mechanism_round_trips_through_json() -> None:
    sgd = SubsampledGaussian(noise_multiplier=0.9, sample_rate=0.02, steps=50, delta=1e-7)
    assert parse_mechanism(sgd.model_dump(mode="json")) == sgd


BASE = {
    "kind": "subsampled_gaussian",
    "noise_multiplier": 1.0,
    "sample_rate": 0.01,
    "steps": 10,
    "delta": 1e-6,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier"),
        ({"noise_multiplier": float("inf")}, "noise_multiplier"),
        ({"sample_rate": 0.0}, "sample_rate"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"steps": 0}, "steps"),
        ({"delta": 1.0}, "delta"),
        ({"kind": "laplace"}, "kind"),
        ({"clip": 1.0}, "clip"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_mechanism({**BASE, **change})
    assert field in str(caught.value)
