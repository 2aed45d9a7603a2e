"""Moved to ``tasks.labour_market``: the BMO 2024 crosswalk is public reference data that the
autodiagnostic service reads too, and production code may not import ``simulations``."""

from tasks.labour_market import *  # noqa: F403
from tasks.labour_market import SECRET_CELL_VALUE  # noqa: F401
