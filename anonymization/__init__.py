"""De-identification at the node: keyed pseudonyms, generalization, k-anonymity, French text scrubbing.

A leaf package: it imports no other package of this repository, so every partner can audit it alone.
"""

from typing import TYPE_CHECKING

from anonymization.errors import (
    AnonymizationError,
    ConfigError,
    InvalidIdentifierError,
    LinkageKeyError,
)
from anonymization.keys import LinkageKey, load_linkage_key
from anonymization.pseudonyms import Pseudonymizer
from anonymization.report import AnonymizationReport

if TYPE_CHECKING:  # what ``__getattr__`` imports on first use, named here for the type checker only
    from anonymization.parcours import anonymize_parcours
    from anonymization.scrubber import FrenchScrubber
    from anonymization.table import anonymize_table

__all__ = [
    "AnonymizationError",
    "AnonymizationReport",
    "ConfigError",
    "InvalidIdentifierError",
    "LinkageKey",
    "LinkageKeyError",
    "Pseudonymizer",
    "load_linkage_key",
    "anonymize_parcours",
    "anonymize_table",
    "FrenchScrubber",
]


def __getattr__(name: str) -> object:
    """Import the heavy parts (pandas, Presidio, spaCy) only when asked for."""
    if name == "anonymize_parcours":
        from anonymization.parcours import anonymize_parcours

        return anonymize_parcours
    if name == "anonymize_table":
        from anonymization.table import anonymize_table

        return anonymize_table
    if name == "FrenchScrubber":
        from anonymization.scrubber import FrenchScrubber

        return FrenchScrubber
    raise AttributeError(name)
