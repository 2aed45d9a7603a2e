"""The mechanisms' JSON shapes live in ``contracts.mechanisms`` (nodes send them, the broker checks
them); the ledger's modules keep this import path."""

from contracts.mechanisms import (
    MAX_COUNT,
    MAX_DELTA,
    MAX_NOISE_MULTIPLIER,
    MAX_STEPS,
    MECHANISM_ADAPTER,
    MIN_DELTA,
    GaussianQuery,
    Mechanism,
    SubsampledGaussian,
    parse_mechanism,
)

__all__ = [
    "MAX_COUNT",
    "MAX_DELTA",
    "MAX_NOISE_MULTIPLIER",
    "MAX_STEPS",
    "MECHANISM_ADAPTER",
    "MIN_DELTA",
    "GaussianQuery",
    "Mechanism",
    "SubsampledGaussian",
    "parse_mechanism",
]
