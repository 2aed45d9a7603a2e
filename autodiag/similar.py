"""Similar profiles: counts and delays of people like this one at the partners, as DP statistics.

The partners' statistics engine (issue 14: DP queries answered by the nodes, small cells
suppressed) does not exist yet. This is the one function a later change fills; until then it says
so, and the page says so in plain words rather than showing numbers from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimilarProfiles:
    """DP counts and delays for the person's cell, or why there are none."""

    available: bool
    message: str
    people: float | None = None
    employed_6m_share: float | None = None
    median_delay_months: float | None = None
    suppressed: bool = False


def similar_profiles(zone_emploi: str, rome: str, education_level: str) -> SimilarProfiles:
    """The partners' DP statistics for (zone, occupation, diploma); not available yet."""
    return SimilarProfiles(
        available=False,
        message=(
            "Les statistiques de profils similaires ne sont pas encore disponibles : le moteur de "
            "statistiques des partenaires, qui les calculera sous confidentialité différentielle et "
            "masquera les petits effectifs, n'existe pas encore. Aucun chiffre n'est donc affiché ici."
        ),
    )
