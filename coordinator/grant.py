"""The Region asks the trust broker for a study — the one way both engines get their grant.

The request names the purpose, the task, the fields the purpose allows and every listed site
exposes, the rounds, the target ε and the largest δ the purpose's rule admits for every site's
declared dataset size; the broker decides (site policies included) and signs. The grant then
travels in the round instructions to every node, which verifies it with its pinned broker key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from contracts.roles import Role
from policies.loader import load_purposes, load_site_policies
from policies.models import Purpose, SitePolicy, StudyRequest
from tasks.registry import get_task
from trust_broker.client import BrokerClient, BrokerError, StudyRefused

from .study_config import StudyConfig


class GrantRequestError(RuntimeError):
    """The broker refused the study (every refusing rule named) or could not be asked."""


def requestable_fields(
    task: str, purpose: str, sites: Sequence[str], dataset: str, policies_dir: Path | None = None
) -> tuple[str, ...]:
    """The task's fields that the purpose allows and every listed site exposes.

    ``policies_dir`` (``purposes/`` and ``sites/``, as the broker's ``--policies``): the documents the
    broker decides on, when they are not the shipped ones (a simulated region's generated sites)."""
    purposes, policies = _documents(policies_dir)
    if purpose not in purposes:
        raise GrantRequestError(f"purpose {purpose!r} is unknown (known: {', '.join(sorted(purposes))})")
    allowed = set(purposes[purpose].allowed_fields)
    for site in sites:
        if site not in policies or dataset not in policies[site].datasets:
            raise GrantRequestError(f"site {site!r} declares no dataset {dataset!r} in its policy document")
        allowed &= set(policies[site].datasets[dataset].exposed_fields)
    return tuple(f for f in get_task(task).default_fields() if f in allowed)


def _documents(policies_dir: Path | None) -> tuple[dict[str, Purpose], dict[str, SitePolicy]]:
    if policies_dir is None:
        return load_purposes(), load_site_policies()
    return load_purposes(policies_dir / "purposes"), load_site_policies(policies_dir / "sites")


def admissible_delta(
    purpose: str, sites: Sequence[str], dataset: str, policies_dir: Path | None = None
) -> float:
    """The largest δ the purpose's rule admits for every site's declared size (δ ≤ 1/(10·n))."""
    purposes, policies = _documents(policies_dir)
    rule = purposes[purpose].delta_rule
    largest = max(policies[s].datasets[dataset].records for s in sites)
    return min(rule.max_delta, 1.0 / (rule.inverse_size_factor * largest))


def request_grant(
    config: StudyConfig, *, purpose: str, broker_url: str, keys: Path, policies_dir: Path | None = None
) -> StudyConfig:
    """Ask the broker with the coordinator's key; the granted config, or GrantRequestError."""
    dataset = get_task(config.task).dataset
    fields = requestable_fields(config.task, purpose, config.sites, dataset, policies_dir)
    delta = admissible_delta(purpose, config.sites, dataset, policies_dir)
    request = StudyRequest(
        study_id=config.study_id,
        purpose_id=purpose,
        task=config.task,
        dataset=dataset,
        fields=fields,
        sites=config.sites,
        rounds=config.num_server_rounds,
        target_epsilon=config.target_epsilon,
        delta=delta,
        coordinator="coordinator",
        requested_by="coordinator",
    )
    try:
        with BrokerClient.from_folder(keys, Role.REGION, base_url=broker_url) as region:
            granted = region.request_study(request)
    except StudyRefused as exc:
        reasons = "; ".join(f"{r.rule} ({r.subject}): {r.detail}" for r in exc.reasons) or exc.detail
        raise GrantRequestError(f"the broker refused study {config.study_id}: {reasons}") from None
    except (BrokerError, OSError, ValueError) as exc:
        raise GrantRequestError(f"asking the broker at {broker_url} for a grant: {exc}") from None
    return replace(
        config,
        grant=granted.grant,
        fields=fields,
        delta=delta,
        evaluations=granted.claims.evaluation.evaluations,
    )
