"""Quasi-identifier generalizations: each turns one column into one or more coarser columns."""

from anonymization.generalization.base import GeneralizationResult, Generalizer
from anonymization.generalization.registry import GENERALIZERS, build_generalizer

__all__ = ["GENERALIZERS", "GeneralizationResult", "Generalizer", "build_generalizer"]
