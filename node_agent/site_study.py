"""One study as one site lives it: admitted once, data prepared once, σ calibrated once.

Kept per process (Flower reuses ClientApp processes across rounds in simulation); in deployment
every message runs in a fresh process and the session is rebuilt, deterministically — from the
site's table as the study's first message prepared it, kept on the node's disk (``table_cache``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from contracts.instructions import StudyInstructions
from tasks.metrics import HoldoutLayout
from tasks.registry import TaskSpec, get_task

from .declined import NodeDeclined
from .dp_plan import DpPlan, PrivacyPlanError, epsilon_spent, plan_study, site_delta
from .dp_release import GaussianRelease, NodeRandomness, ReleaseCounter, evaluation_release
from .gate import StudyGate, StudyTerms
from .local_data import SiteData, load_site_table, split_and_encode
from .preparation import anonymized_view, holdout_membership, site_linkage_key, usable, with_legal_basis
from .settings import NodeSettings
from .site_size import ReleasedSize, released_size
from .table_cache import TableCache, cache_key


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
    #: What the node disclosed of its training set's size, once per study (node_agent.site_size).
    size: ReleasedSize = ReleasedSize(0.0, 0.0)

    def evaluations(self) -> ReleaseCounter:
        return ReleaseCounter(self.settings.state_folder, self.instructions.study_id, "evaluation")

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

    def training_count(self) -> int:
        """How many training records this round may use (the mask alone: no arrays copied)."""
        keys = self.data.train_keys
        return len(self.data.y_train) if keys is None else int(usable(keys, self.gate, self.terms)[0].sum())

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
    try:
        terms = gate.admit(instructions, spec)  # grant + local policy, before any record is read
    except NodeDeclined as refused:
        TableCache(settings.state_folder).forget_if_over(instructions.study_id, refused.rule)
        raise
    frame, counts = with_legal_basis(spec, *_prepared_table(settings, instructions, spec, terms), gate, terms)
    holdout = holdout_membership(frame, settings=settings, study_id=instructions.study_id)
    data = split_and_encode(spec, frame, fields=terms.fields, counts=counts, holdout=holdout)
    layout = HoldoutLayout.for_encoder(spec.encoder_for(terms.fields))
    # From here on, the site's size is only what this release discloses (node_agent.site_size).
    size = released_size(
        settings.state_folder,
        instructions.study_id,
        settings.site,
        len(data.y_train),
        # A reproducible node (its own setting) draws the same noise every study: not a DP release.
        private=math.isfinite(terms.target_epsilon) and settings.reproducible_seed is None,
        delta=terms.delta,
        randomness=NodeRandomness.for_node(settings.reproducible_seed),
        gate=gate,
    )
    try:
        evaluation, plan = _calibrated(settings, instructions, terms, size, layout.l2_sensitivity)
    except PrivacyPlanError as exc:
        raise NodeDeclined("dp.plan", str(exc)) from None
    return SiteStudy(settings, instructions, spec, gate, terms, data, plan, layout, evaluation, size=size)


def _prepared_table(
    settings: NodeSettings, instructions: StudyInstructions, spec: TaskSpec, terms: StudyTerms
) -> tuple[pd.DataFrame, dict[str, object]]:
    """The site's anonymized table: prepared by the study's first message, then read back from the
    node's disk while the data and the grant stay the same (``table_cache``)."""

    def prepare() -> tuple[pd.DataFrame, dict[str, object]]:
        raw = load_site_table(spec, settings)
        return anonymized_view(spec, raw, settings=settings, study_id=instructions.study_id, terms=terms)

    data_file = settings.data_dir / spec.file_name
    # Public benchmark data: preparing is reading the file. No file: the loader names the problem.
    # A database source is read afresh each time: no file digest says when its rows changed.
    if not spec.personal_identifiers or settings.source is not None or not data_file.is_file():
        return prepare()
    key = cache_key(
        study_id=instructions.study_id,
        task=spec.name,
        data_file=data_file,
        grant=instructions.grant,
        fields=terms.fields,
        linkage_key=site_linkage_key(settings).secret,
    )
    cache = TableCache(settings.state_folder)
    return cache.prepared(instructions.study_id, key, prepare, expires_at=terms.expires_at)


def _calibrated(
    settings: NodeSettings,
    instructions: StudyInstructions,
    terms: StudyTerms,
    size: ReleasedSize,
    l2_sensitivity: float,
) -> tuple[GaussianRelease | None, DpPlan]:
    """The evaluations' release and DP-SGD's plan: computed by the study's first message, then
    remembered on the node's disk for exactly these inputs (``TableCache.calibration``)."""

    def compute() -> dict[str, object]:
        delta = site_delta(terms.delta, size.upper)
        evaluation = evaluation_release(terms.evaluation, terms.target_epsilon, delta, l2_sensitivity)
        plan = _training_plan(instructions, terms, size, delta, evaluation)
        return {"evaluation": asdict(evaluation) if evaluation else None, "plan": plan.to_dict()}

    inputs = {
        "size": [size.value, size.noise_std],  # the released size, never the exact count
        "l2_sensitivity": l2_sensitivity,
        "terms": [terms.target_epsilon, terms.delta, repr(terms.evaluation)],
        "instructions": [instructions.batch_size, instructions.local_epochs, instructions.num_rounds],
        "max_grad_norm": instructions.max_grad_norm,
        "shapes": [sorted(DpPlan.__dataclass_fields__), sorted(GaussianRelease.__dataclass_fields__)],
    }
    value = TableCache(settings.state_folder).calibration(instructions.study_id, inputs, compute)
    evaluation, plan = value["evaluation"], value["plan"]
    assert isinstance(plan, dict) and (evaluation is None or isinstance(evaluation, dict))
    return (GaussianRelease(**evaluation) if evaluation else None), DpPlan(**plan)


def _training_plan(
    instructions: StudyInstructions,
    terms: StudyTerms,
    size: ReleasedSize,
    delta: float,
    evaluation: GaussianRelease | None,
) -> DpPlan:
    """DP-SGD calibrated on what the evaluations and the size release leave of the site's study ε.

    The evaluations' noise is fixed first, by their share of ε (what they would cost alone); then
    DP-SGD's σ is the smallest whose rounds, composed with every granted evaluation by the ledger's
    RDP accountant, stay within the site's target. RDP composes far more tightly than ε's add: a
    plan on ε·(1 − share) alone would leave about a fifth of the budget unspent (2.38 of 3 in the
    demo) — the plan on that figure only gives the steps and the sample rate.
    """
    plan = plan_study(
        n_train=size.value,
        batch_size=instructions.batch_size,
        local_epochs=instructions.local_epochs,
        rounds=instructions.num_rounds,
        target_epsilon=terms.target_epsilon * (1.0 - terms.evaluation.epsilon_share)
        if evaluation is not None
        else terms.target_epsilon,
        delta=delta,
        max_grad_norm=instructions.max_grad_norm,
    )
    if not plan.private:
        return plan
    releases = [size.step()]
    if evaluation is not None:
        releases.append((evaluation.noise_multiplier, 1.0, terms.evaluation.evaluations))
    steps = plan.steps_per_round * plan.rounds

    def epsilon(sigma: float) -> float:
        return epsilon_spent([(sigma, plan.sample_rate, steps), *releases], delta)

    low, high = 0.3, plan.noise_multiplier  # σ of DP-SGD alone on the smaller share: usually enough
    for _ in range(20):  # without evaluations, σ alone spent all of ε: the size release needs a little more
        if epsilon(high) <= terms.target_epsilon:
            break
        low, high = high, high * 1.25
    else:
        raise PrivacyPlanError(
            f"no DP-SGD plan fits beside the other releases within ε {terms.target_epsilon}"
        )
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (low, middle) if epsilon(middle) <= terms.target_epsilon else (middle, high)
        if high - low < 1e-3:
            break
    return replace(plan, noise_multiplier=high, target_epsilon=terms.target_epsilon)
