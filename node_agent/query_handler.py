"""The node's answer to a statistics query (Flower ``query`` message): noisy aggregates only.

In order, as for a training round: admit (grant, local policy) → load, pseudonymize the NIR,
keep one record per person, drop opt-outs → check the query against the grant → **reserve** its
cost → compute this site's part over its own records (values clamped) → add Gaussian noise drawn
from the node's own CSPRNG-seeded randomness → **commit** → reply with the noisy components and
their noise std. The coordinator only chooses *what* is asked and which share of the study's ε a
release may use; the broker refuses any reservation past the grant.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from flwr.app import ConfigRecord, Context, Message, RecordDict

from contracts.instructions import RecordError, StudyInstructions
from contracts.queries import QueryMessage, QueryReply
from contracts.records import read_instructions
from tasks import formations
from tasks.analytics import QueryAnswer, check_query, release_plan, true_components
from tasks.record_values import read_floats

from .declined import NodeDeclined, answer_or_decline
from .dp_release import GaussianRelease, NodeRandomness, gaussian_epsilon, noise_multiplier_for, release
from .gate import StudyGate, StudyTerms
from .local_data import load_site_table
from .preparation import LINKAGE, usable
from .settings import NodeSettings

#: σ is raised by this factor so that rounding never lets a release compose past the grant.
SIGMA_MARGIN = 1.001


@dataclass
class QuerySession:
    """A site's prepared records for one study: one row per person, opt-outs applied per release."""

    gate: StudyGate
    terms: StudyTerms
    frame: pd.DataFrame
    randomness: NodeRandomness = field(default_factory=NodeRandomness)


_SESSIONS: dict[tuple[str, str], QuerySession] = {}


def open_query_session(
    settings: NodeSettings, instructions: StudyInstructions, gate: Callable[[NodeSettings], StudyGate]
) -> QuerySession:
    key = (settings.site, instructions.study_id)
    if key not in _SESSIONS:
        the_gate = gate(settings)
        terms = the_gate.admit(instructions, formations.FORMATIONS_TASK)
        _SESSIONS[key] = QuerySession(the_gate, terms, _prepare(settings, terms, instructions.study_id))
    return _SESSIONS[key]


def _prepare(settings: NodeSettings, terms: StudyTerms, study_id: str) -> pd.DataFrame:
    """Granted columns and the linkage pseudonym; identifiers dropped; one record per person."""
    from anonymization.pseudonyms import Pseudonymizer

    from .preparation import _write_local_report, site_linkage_key

    raw = load_site_table(formations.FORMATIONS_TASK, settings)
    loaded = len(raw)
    pseudonyms = Pseudonymizer(site_linkage_key(settings)).pseudonymize_column("nir", raw["nir"].tolist())
    linkage = pd.Series(pseudonyms.pseudonyms, index=raw.index)  # None where the NIR is unusable
    raw = raw.assign(**{LINKAGE: linkage}).dropna(subset=[LINKAGE])
    usable_ids = len(raw)
    # A person with several trainings at this site counts once: their latest one.
    raw = raw.sort_values("training_end", kind="stable").drop_duplicates(LINKAGE, keep="last")
    # The partner's own record of what was left out and why (it stays on the node).
    _write_local_report(
        settings,
        study_id,
        {
            "records_loaded": loaded,
            "nir_rejected_rows": [int(r) + 2 for r in pseudonyms.rejected_rows],
            "nir_empty_rows": [int(r) + 2 for r in pseudonyms.empty_rows],
            "later_trainings_of_the_same_person": usable_ids - len(raw),
        },
    )
    granted = [c for c in formations.COLUMNS if c in terms.fields]
    return raw[[*granted, LINKAGE]].reset_index(drop=True)


def answer_query(
    content: RecordDict, context: Context, settings: NodeSettings, gate: Callable[[NodeSettings], StudyGate]
) -> RecordDict:
    instructions = read_instructions(content)
    try:
        request = QueryMessage.from_record(content).request
    except RecordError as exc:
        raise NodeDeclined("query.message", str(exc)) from None
    session = open_query_session(settings, instructions, gate)
    session.gate.still_granted()
    terms, spec = session.terms, request.spec
    if spec.purpose != terms.purpose or spec.dataset != terms.dataset:
        raise NodeDeclined("grant.mismatch", "the query's purpose or dataset differs from the grant's")
    missing = [f for f in spec.fields() if f not in terms.fields]
    if missing:
        raise NodeDeclined(
            "grant.fields", f"the query reads fields the grant does not cover: {', '.join(missing)}"
        )
    problems = check_query(spec)
    if problems:
        raise NodeDeclined(problems[0].rule, problems[0].detail)
    if not 0.0 < request.budget_share <= 1.0:
        raise NodeDeclined("query.budget_share", f"budget share {request.budget_share} outside (0, 1]")
    plan = release_plan(spec)
    count = len(plan.components)
    base = noise_multiplier_for(terms.target_epsilon, terms.delta, 1)
    sigma = base * math.sqrt(count / request.budget_share) * SIGMA_MARGIN
    mechanism = GaussianRelease(sigma, 1.0, terms.delta, count).mechanism()

    keep, _ = usable(session.frame[LINKAGE].astype(str).to_numpy(), session.gate, terms)
    records = session.frame[keep]
    request_id = f"{instructions.study_id}:{settings.site}:query:{request.release}:{uuid.uuid4().hex}"
    # The ledger hears no count (examples: one): the site's counts leave only through this noisy release.
    reservation = session.gate.reserve(request_id, mechanism, examples=1)
    exact = true_components(records, spec, plan)
    noisy: dict[str, list[list[float]]] = {}
    stds: dict[str, float] = {}
    for component in plan.components:
        spec_c = GaussianRelease(sigma, component.sensitivity, terms.delta)
        released = release(exact[component.name], spec_c, session.randomness)
        noisy[component.name] = np.array([v.value for v in released]).reshape(component.shape).tolist()
        stds[component.name] = spec_c.noise_std
    del exact
    session.gate.commit(reservation, mechanism)
    session.gate.report({"reservation_id": reservation})  # no count: it is not a DP release
    history = _record_release(context, instructions.study_id, sigma, count)
    answer = QueryAnswer(
        site=settings.site,
        release=request.release,
        values=noisy,
        noise_std=stds,
        epsilon=gaussian_epsilon(history, terms.delta),
        delta=terms.delta,
        noise_multiplier=sigma,
        mechanisms=count,
    )
    return QueryReply(answer).to_record()


def _record_release(context: Context, study_id: str, sigma: float, count: int) -> list[tuple[float, int]]:
    """This study's Gaussian releases at this node so far, kept in the node's Flower context."""
    key = f"query-history:{study_id}"
    if key not in context.state:
        context.state[key] = ConfigRecord({"sigma": [], "count": []})
    record = context.state.config_records[key]
    sigmas = [*read_floats(record, "sigma"), sigma]
    counts = [*(int(c) for c in read_floats(record, "count")), count]
    record["sigma"], record["count"] = sigmas, counts
    return list(zip(sigmas, counts, strict=True))


def reply_to_query(msg: Message, context: Context, gate: Callable[[NodeSettings], StudyGate]) -> Message:
    """The ClientApp's ``query`` handler: an answer, or a ``Decline`` naming the site and the rule."""
    return answer_or_decline(
        msg, context, lambda settings: answer_query(msg.content, context, settings, gate)
    )
