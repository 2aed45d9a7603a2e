"""``decide()``: may this study run, and if not, which rules refused it.

Pure: no I/O, no clock. The broker calls it with the purpose, the site policies and what each site's
dataset account already spent this period; the answer carries every reason, not just the first,
so the Region can fix a request in one go.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.digest import policy_digest
from policies.models import Decision, Purpose, SitePolicy, StudyRequest
from policies.rules import RULES, RuleContext


def decision_digest(request: StudyRequest, purpose: Purpose, sites: Mapping[str, SitePolicy]) -> str:
    """Digest of the rules in force for this request: the purpose and the requested sites' policies."""
    involved = {site: sites[site] for site in sorted(request.sites) if site in sites}
    return policy_digest({"purpose": purpose, "sites": involved})


def decide(
    request: StudyRequest,
    purpose: Purpose,
    sites: Mapping[str, SitePolicy],
    *,
    spent: Mapping[str, float] | None = None,
) -> Decision:
    """Apply every registered rule; allowed exactly when none refuses.

    ``spent`` maps a site to the ε its ``request.dataset`` account already composed this period.
    ``per_site_epsilon`` is the ε each site's dataset may spend on the study: the target, or less
    when less remains.
    """
    ctx = RuleContext(request=request, purpose=purpose, sites=sites, spent=dict(spent or {}))
    reasons = [reason for rule in RULES for reason in rule(ctx)]
    per_site = {site.site: min(request.target_epsilon, ctx.room_for(site)) for site in ctx.known_sites()}
    return Decision(
        allowed=not reasons,
        reasons=tuple(reasons),
        per_site_epsilon=per_site,
        delta=request.delta,
        policy_digest=decision_digest(request, purpose, sites),
    )
