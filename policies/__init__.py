"""Governance model: purposes, site policies and the pure ``decide()`` that answers with reasons."""

from policies.decide import decide
from policies.digest import policy_digest
from policies.loader import PolicyLoadError, load_purposes, load_site_policies
from policies.models import Decision, EvaluationBudget, LegalBasis, Purpose, Reason, SitePolicy, StudyRequest

__all__ = [
    "Decision",
    "EvaluationBudget",
    "LegalBasis",
    "PolicyLoadError",
    "Purpose",
    "Reason",
    "SitePolicy",
    "StudyRequest",
    "decide",
    "load_purposes",
    "load_site_policies",
    "policy_digest",
]
