"""One study as one site lives it: admitted once, data prepared once, σ calibrated once.

Kept per process (Flower reuses ClientApp processes across rounds in simulation); in deployment
each round may run in a fresh process and the session is simply rebuilt, deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tasks.instructions import StudyInstructions
from tasks.registry import TaskSpec, get_task

from .declined import NodeDeclined
from .dp_plan import DpPlan, PrivacyPlanError, plan_study, site_delta
from .gate import StudyGate, StudyTerms
from .local_data import SiteData, load_site_table, split_and_encode
from .preparation import analysis_view, usable
from .settings import NodeSettings


@dataclass
class SiteStudy:
    settings: NodeSettings
    instructions: StudyInstructions
    spec: TaskSpec
    gate: StudyGate
    terms: StudyTerms
    data: SiteData
    plan: DpPlan

    def training_set(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Training records this round may use, and how many left since the study opened."""
        keys = self.data.train_keys
        if keys is None:  # public benchmark data: no person to object
            return self.data.x_train, self.data.y_train, 0
        keep, _ = usable(keys, self.gate, self.terms)
        return self.data.x_train[keep], self.data.y_train[keep], int((~keep).sum())


_SESSIONS: dict[tuple[str, str], SiteStudy] = {}


def open_site_study(
    settings: NodeSettings, instructions: StudyInstructions, gate: Callable[[NodeSettings], StudyGate]
) -> SiteStudy:
    """The site's session for this study: opened (admitted, prepared) once per process."""
    key = (settings.site, instructions.study_id)
    if key not in _SESSIONS:
        _SESSIONS[key] = _open(settings, instructions, gate(settings))
    return _SESSIONS[key]


def _open(settings: NodeSettings, instructions: StudyInstructions, gate: StudyGate) -> SiteStudy:
    spec = get_task(instructions.task)
    terms = gate.admit(instructions, spec)  # grant + local policy, before any record is read
    raw = load_site_table(spec, settings)
    frame, counts = analysis_view(
        spec, raw, settings=settings, study_id=instructions.study_id, gate=gate, terms=terms
    )
    data = split_and_encode(
        spec, frame, study_id=instructions.study_id, site=settings.site, fields=terms.fields, counts=counts
    )
    n_train = len(data.y_train)
    try:
        plan = plan_study(
            n_train=n_train,
            batch_size=instructions.batch_size,
            local_epochs=instructions.local_epochs,
            rounds=instructions.num_rounds,
            target_epsilon=terms.target_epsilon,
            delta=site_delta(terms.delta, n_train),
            max_grad_norm=instructions.max_grad_norm,
        )
    except PrivacyPlanError as exc:
        raise NodeDeclined("dp.plan", str(exc)) from None
    return SiteStudy(settings, instructions, spec, gate, terms, data, plan)
