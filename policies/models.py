"""Typed governance documents: a purpose (finalité), a site's own policy, a study request, a decision.

Every model forbids unknown keys so that a typo in a YAML document is an error, not a silently
ignored rule. Models are frozen: a policy is a value that can be digested and compared.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Period = Literal["calendar_year", "P1Y", "P6M", "P3M", "P1M"]
"""Budget periods, calendar-aligned (``P1Y`` == ``calendar_year``): ``period_of`` in the ledger maps a
date to the period's label. Rolling windows are not offered: an account must have one stable key."""


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalBasis(StrEnum):
    """GDPR basis of a purpose; it decides how people's choices filter the records."""

    # art. 6-1-e: every record except those whose person objected (opt-out, art. 21)
    PUBLIC_INTEREST = "public_interest"
    # art. 6-1-a: only records with a recorded, unwithdrawn consent for the purpose (opt-in)
    CONSENT = "consent"


class DeltaRule(_Document):
    """δ must stay below ``1/(inverse_size_factor · n)`` for every site's dataset size n and ``max_delta``.

    The 1/(10·n) rule keeps the probability of a catastrophic release far below one person in the dataset.
    """

    inverse_size_factor: float = Field(default=10.0, ge=1.0)
    max_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)

    def limit_for(self, records: int) -> float:
        """The largest δ allowed for a dataset of ``records`` people."""
        return min(self.max_delta, 1.0 / (self.inverse_size_factor * max(records, 1)))


class EvaluationBudget(_Document):
    """What a study may spend on evaluating its model on each site's holdout (issue 10, item 4).

    Every evaluation is a Gaussian release of the holdout's statistics, reserved and committed in the
    site's account like a DP-SGD round. ``epsilon_share`` of each site's study ε is set aside for them
    before the DP-SGD noise is calibrated on the rest, and the node calibrates the evaluations' noise
    so that exactly ``evaluations`` releases compose to that share: the number is what the grant pays
    for, and the node refuses one more. A fixed share, rather than a per-study choice, keeps the
    trade-off between a better model and a better-measured one out of the coordinator's hands.
    """

    epsilon_share: float = Field(default=0.35, gt=0.0, lt=1.0)
    evaluations: int = Field(default=1, ge=0, le=20)


class GapLimits(_Document):
    """The largest gaps a released model may show across the groups of one protected attribute."""

    max_demographic_parity_gap: float = Field(gt=0.0, le=1.0)
    max_equal_opportunity_gap: float = Field(gt=0.0, le=1.0)


class FairnessPolicy(_Document):
    """What a purpose's released model must show before it may serve people (the release gate).

    Gaps are those the study measures at the nodes on their holdouts (pooled), at the 0.5 decision
    threshold: demographic parity (selection rates) and equal opportunity (true-positive rates),
    largest minus smallest group, limited per protected attribute. ``protected_inputs_reason``
    empty means no protected attribute may be a model input; a purpose that needs one must say why.
    """

    limits: dict[str, GapLimits] = Field(min_length=1, description="per protected attribute")
    protected_inputs_reason: str = ""

    @property
    def protected_attributes(self) -> tuple[str, ...]:
        return tuple(self.limits)


class Purpose(_Document):
    """A purpose the Region may pursue with partner data, and the limits attached to it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label_fr: str = Field(min_length=1)
    legal_basis: LegalBasis
    allowed_tasks: tuple[str, ...] = Field(min_length=1)
    allowed_fields: tuple[str, ...] = Field(min_length=1)
    epsilon_cap_per_period: float = Field(gt=0.0)
    period: Period = "calendar_year"
    delta_rule: DeltaRule = DeltaRule()
    min_cell_size: int = Field(default=11, ge=2)
    evaluation: EvaluationBudget = EvaluationBudget()
    #: ε a person present at *every* requested site may spend on one study, all sites composed (the
    #: unit of privacy stays one record at one site; this bounds its worst case across sites, issue
    #: 10 item 9). None: no cross-site bound. Checked by ``decide()`` (rule ``budget.person_cap``).
    person_epsilon_cap: float | None = Field(default=None, gt=0.0)
    retention_days: int = Field(ge=1)
    description: str = ""
    #: Release gate of a model served to people; None when the purpose publishes no model to people.
    fairness: FairnessPolicy | None = None


class SiteDataset(_Document):
    """A dataset a site holds: its declared size (for the δ rule) and the fields it lets studies use."""

    label: str = ""
    records: int = Field(ge=1, description="declared upper bound on the number of people in the dataset")
    exposed_fields: tuple[str, ...] = Field(min_length=1)


class SitePolicy(_Document):
    """A partner's own policy: what it accepts, whatever the purpose allows. The stricter rule wins."""

    site: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    accepted_purposes: tuple[str, ...]
    accepted_coordinators: tuple[str, ...]
    epsilon_cap: float = Field(gt=0.0, description="ε cap per period for each of the site's dataset accounts")
    budget_period: Period = "calendar_year"
    datasets: dict[str, SiteDataset] = Field(min_length=1)

    def exposed_fields(self, dataset: str) -> tuple[str, ...]:
        """Fields of ``dataset`` the site exposes; empty when the site does not hold it."""
        held = self.datasets.get(dataset)
        return held.exposed_fields if held else ()


class StudyRequest(_Document):
    """What the Region asks the broker for."""

    study_id: str = Field(min_length=1)
    purpose_id: str
    task: str
    dataset: str
    fields: tuple[str, ...] = Field(min_length=1)
    sites: tuple[str, ...] = Field(min_length=1)
    rounds: int = Field(ge=1)
    target_epsilon: float = Field(gt=0.0, description="ε each site's dataset may spend on this study")
    delta: float = Field(gt=0.0, lt=1.0)
    coordinator: str
    requested_by: str

    @model_validator(mode="after")
    def _no_duplicates(self) -> StudyRequest:
        for name in ("fields", "sites"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} lists a value twice: {list(values)}")
        return self


class Reason(_Document):
    """Why a rule refused: the rule id (stable), the subject (site, field, …), what was asked, the limit."""

    rule: str
    subject: str
    detail: str
    limit: str | float | None = None


class Decision(_Document):
    """The broker's answer; ``reasons`` is empty exactly when ``allowed``."""

    allowed: bool
    reasons: tuple[Reason, ...] = ()
    per_site_epsilon: dict[str, float] = Field(default_factory=dict)
    delta: float
    policy_digest: str
