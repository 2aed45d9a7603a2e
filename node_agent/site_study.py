"""One study as one site lives it: admitted once, data prepared once, σ calibrated once.

Kept per process (Flower reuses ClientApp processes across rounds in simulation); in deployment
each round may run in a fresh process and the session is simply rebuilt, deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tasks.instructions import StudyInstructions
from tasks.metrics import HoldoutLayout
from tasks.registry import TaskSpec, get_task

from .declined import NodeDeclined
from .dp_plan import DpPlan, PrivacyPlanError, epsilon_spent, plan_study, site_delta
from .dp_release import GaussianRelease, NodeRandomness, ReleaseCounter, evaluation_release
from .gate import StudyGate, StudyTerms
from .local_data import SiteData, load_site_table, split_and_encode
from .preparation import analysis_view, holdout_membership, usable
from .settings import NodeSettings

#: Where a node keeps its own records of what it released per study (evaluations so far).
NODE_STATE = "node-state"


@dataclass
class SiteStudy:
    settings: NodeSettings
    instructions: StudyInstructions
    spec: TaskSpec
    gate: StudyGate
    terms: StudyTerms
    data: SiteData
    plan: DpPlan
    #: What leaves the node after an evaluation: the cells, and one evaluation's Gaussian release
    #: (None only for non-private benchmark training, whose evaluations are exact and marked so).
    layout: HoldoutLayout | None = None
    evaluation: GaussianRelease | None = None
    randomness: NodeRandomness = field(default_factory=NodeRandomness)

    def evaluations(self) -> ReleaseCounter:
        return ReleaseCounter(self.settings.data_dir / NODE_STATE, self.instructions.study_id, "evaluation")

    def holdout_set(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Holdout records usable now: people who objected since the study opened leave it too."""
        keys = self.data.test_keys
        if keys is None:
            return self.data.x_test, self.data.y_test, self.data.groups_test
        keep, _ = usable(keys, self.gate, self.terms)
        return (
            self.data.x_test[keep],
            self.data.y_test[keep],
            {name: values[keep] for name, values in self.data.groups_test.items()},
        )

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
    holdout = holdout_membership(frame, settings=settings, study_id=instructions.study_id)
    data = split_and_encode(spec, frame, fields=terms.fields, counts=counts, holdout=holdout)
    n_train = len(data.y_train)
    layout = HoldoutLayout.for_encoder(spec.encoder_for(terms.fields))
    try:
        delta = site_delta(terms.delta, n_train)
        evaluation = evaluation_release(terms.evaluation, terms.target_epsilon, delta, layout.l2_sensitivity)
        plan = _training_plan(instructions, terms, n_train, delta, evaluation)
    except PrivacyPlanError as exc:
        raise NodeDeclined("dp.plan", str(exc)) from None
    return SiteStudy(settings, instructions, spec, gate, terms, data, plan, layout, evaluation)


def _training_plan(
    instructions: StudyInstructions,
    terms: StudyTerms,
    n_train: int,
    delta: float,
    evaluation: GaussianRelease | None,
) -> DpPlan:
    """DP-SGD calibrated on what the evaluations leave of the site's study ε.

    The evaluations' share is set aside first (their σ is fixed by it); DP-SGD gets the rest, and
    the composition of every round and every granted evaluation is checked, with the same RDP
    accountant as the ledger's, to stay within the site's target — else the broker would refuse the
    last release of the study. Since RDP composes more tightly than the ε's add, the first try holds.
    """
    share = terms.evaluation.epsilon_share if evaluation is not None else 0.0
    target = terms.target_epsilon * (1.0 - share)
    for _ in range(20):
        plan = plan_study(
            n_train=n_train,
            batch_size=instructions.batch_size,
            local_epochs=instructions.local_epochs,
            rounds=instructions.num_rounds,
            target_epsilon=target,
            delta=delta,
            max_grad_norm=instructions.max_grad_norm,
        )
        if evaluation is None or not plan.private:
            return plan
        whole = [
            (plan.noise_multiplier, plan.sample_rate, plan.steps_per_round * plan.rounds),
            (evaluation.noise_multiplier, 1.0, terms.evaluation.evaluations),
        ]
        if epsilon_spent(whole, delta) <= terms.target_epsilon:
            return plan
        target *= 0.98
    raise PrivacyPlanError(f"no DP-SGD plan fits beside the evaluations within ε {terms.target_epsilon}")
