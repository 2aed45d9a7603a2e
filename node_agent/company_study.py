"""Use case 2 at a company holder: federated DP k-means, local labelling, skill-needs statistics.

Order for every step (DESIGN.md, "At the node"): grant verified and local policy applied once per
study → ``entreprises.csv`` validated (bad rows counted with file, line, field, rule, and left
out; the detail stays in ``node-reports/``) → SIRETs replaced by linkage pseudonyms → opt-outs
dropped → the step's Gaussian release **reserved** at the broker under a fresh request id → noise
drawn from the node's own randomness → **committed** → one noisy vector returned.

σ is the node's: the same noise multiplier for every release of the study, calibrated with the
ledger's accountant so that ``planned_releases`` of them compose to the grant's ε at this site.
A step asked twice, or a release beyond the plan, is refused before anything is reserved.
Local labelling (step ``skills``) writes each company's type to the node's own folder only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from contracts.instructions import StudyInstructions
from tasks import clustering, skill_needs
from tasks.clustering_protocol import ClusteringReply, ClusteringRequest, Step, planned_releases
from tasks.companies import (
    CompanyFeatures,
    ValidationReport,
    company_view,
    domain_shares,
    skill_need_domains,
    validate_companies,
)
from tasks.record_values import read_strs
from tasks.registry import get_task

from .declined import NodeDataError, NodeDeclined
from .dp_plan import site_delta
from .dp_release import GaussianRelease, NodeRandomness, gaussian_epsilon, noise_multiplier_for, release
from .gate import StudyGate, StudyTerms
from .preparation import usable
from .settings import NodeSettings

if TYPE_CHECKING:
    from flwr.app import Context, Message, RecordDict

TASK = "company_clustering"
#: Entry of a site's release book that pins the study's plan (number of releases and σ).
PLAN_PREFIX = "plan:"


@dataclass
class CompanySite:
    """A holder's companies, ready to release statistics: features, labels for the model, σ.

    ``done`` is the site's release book for this study (kept across processes by the caller in the
    Flower context): the plan the first release was made under, and the names of the releases
    made, so that a replayed step, or a plan changed by later instructions, is refused.
    """

    site: str
    study_id: str
    gate: StudyGate
    features: CompanyFeatures
    x: np.ndarray
    sirets: np.ndarray  # stays here: local labelling writes them to the node's own folder
    pseudonyms: np.ndarray
    sought: np.ndarray  # top sought domains, 0/1
    needs: np.ndarray  # skill-need domains, 0/1
    sigma: float
    delta: float
    lloyd_iterations: int
    randomness: NodeRandomness = field(default_factory=NodeRandomness)
    labels_path: Path | None = None  # the local labelling file (None: not written)

    @property
    def releases_planned(self) -> int:
        return planned_releases(self.lloyd_iterations)

    def answer(self, request: ClusteringRequest, done: set[str]) -> ClusteringReply:
        name = request.release_name
        plan = f"{PLAN_PREFIX}{self.releases_planned}:{self.sigma:.12g}"
        pinned = {d for d in done if d.startswith(PLAN_PREFIX)}
        if pinned and pinned != {plan}:  # deployment rebuilds the session from each message's instructions
            raise NodeDeclined(
                "dp.plan_changed", f"study {self.study_id} started here under another release plan"
            )
        made = {d for d in done if not d.startswith(PLAN_PREFIX)}
        if name in made:
            raise NodeDeclined("dp.replay", f"release {name} of study {self.study_id} was already made here")
        if len(made) >= self.releases_planned:
            raise NodeDeclined("dp.releases", f"the {self.releases_planned} planned releases are spent")
        if request.step == Step.LLOYD and not 1 <= request.index <= self.lloyd_iterations:
            raise NodeDeclined(
                "dp.releases", f"Lloyd step {request.index} outside 1..{self.lloyd_iterations}"
            )
        self.gate.still_granted()
        self._check(request)  # a malformed request is refused before anything is reserved
        spec = GaussianRelease(self.sigma, self._sensitivity(request.step), self.delta, count=1)
        # The ledger hears no count (examples: one): the companies leave only through the noisy release.
        reservation = self.gate.reserve(f"{self.study_id}:{self.site}:{name}", spec.mechanism(), 1)
        vector = self._statistics(request)  # records are read for the release only once it is reserved
        noisy = release(vector, spec, self.randomness)
        self.gate.commit(reservation, spec.mechanism())
        done.update((plan, name))
        made.add(name)
        return ClusteringReply(
            site=self.site,
            step=request.step,
            values=tuple(v.value for v in noisy),
            noise_std=spec.noise_std,
            epsilon_spent=gaussian_epsilon([(self.sigma, len(made))], self.delta) if made else 0.0,
            delta=self.delta,
            releases=len(made),
        )

    def _sensitivity(self, step: Step) -> float:
        if step in (Step.CORESET, Step.LLOYD):
            return clustering.release_sensitivity(self.features)
        return skill_needs.table_sensitivity() if step == Step.SKILLS else skill_needs.EVALUATION_SENSITIVITY

    def _check(self, request: ClusteringRequest) -> None:
        if request.step == Step.CORESET:
            return
        centres = request.centres
        width = self.features.width
        if (
            centres.ndim != 2
            or centres.shape[0] < 1
            or centres.shape[1] != width
            or not np.isfinite(centres).all()
        ):
            raise NodeDeclined(
                "protocol", f"centres must be a finite k × {width} matrix, got {centres.shape}"
            )
        if request.step == Step.EVALUATE:
            expected = 2 * len(centres) * self.needs.shape[1]
            values = np.asarray(request.model, dtype=float)
            if values.shape != (expected,) or not np.isfinite(values).all():
                raise NodeDeclined("protocol", f"the model must hold {expected} finite rates for these types")

    def _statistics(self, request: ClusteringRequest) -> np.ndarray:
        if request.step == Step.CORESET:
            grid = clustering.CoresetGrid(self.features)
            return clustering.cell_statistics(self.x, grid.cells(self.x), grid.n_cells)
        centres = request.centres
        types = clustering.assign(self.x, centres)
        if request.step == Step.LLOYD:
            return clustering.cell_statistics(self.x, types, len(centres))
        holdout = skill_needs.in_holdout(self.pseudonyms)
        if request.step == Step.SKILLS:
            self._label_locally(types, request.labels)
            train = ~holdout
            return skill_needs.table_statistics(
                types[train], self.sought[train], self.needs[train], len(centres)
            )
        model = skill_needs.SkillNeedsModel.from_list(list(request.model), len(centres))
        predicted = model.predict(types[holdout], self.sought[holdout])
        return skill_needs.evaluation_statistics(predicted, self.needs[holdout])

    def _label_locally(self, types: np.ndarray, labels: tuple[str, ...]) -> None:
        """Each company's released type, for the holder's counselors: written here, sent nowhere."""
        if self.labels_path is None:
            return
        safe = [_safe_label(label) for label in labels]
        names = [safe[t] if t < len(safe) and safe[t] else f"type {t + 1}" for t in types]
        table = pd.DataFrame({"siret": self.sirets, "type": types + 1, "type_label": names})
        table.to_csv(self.labels_path, index=False, lineterminator="\n")


#: What a type's label may hold: letters (accents too), digits, spaces and plain punctuation.
_LABEL_UNSAFE = re.compile(r"[^\w ,.;:'’()/-]")
_LABEL_MAX = 120


def _safe_label(label: str) -> str:
    """A label the coordinator sent, made harmless for the spreadsheet counselors open the file in:
    no formula (a leading =, +, -, @), no control character, no markup, bounded length."""
    cleaned = _LABEL_UNSAFE.sub(" ", str(label))[:_LABEL_MAX]
    return " ".join(cleaned.split()).lstrip("=+-@ ")


# --------------------------------------------------------------------------- opening a study at a node


def prepare_company_site(
    settings: NodeSettings, instructions: StudyInstructions, gate: StudyGate
) -> CompanySite:
    """Admit, load, validate, pseudonymize, filter, encode; calibrate σ. Nothing leaves here."""
    spec = get_task(instructions.task)
    if spec.name != TASK:
        raise NodeDeclined("protocol", f"task {spec.name} is not a company study")
    terms = gate.admit(instructions, spec)
    from .local_data import load_site_table
    from .sources import site_source

    raw = load_site_table(spec, settings)  # a schema problem leaves the node without cell values
    source = site_source(settings, spec.dataset, spec.file_name).name
    try:
        valid, report = validate_companies(raw, source)
    except ValueError as exc:  # the full text (cell values) stays in the partner's log
        raise NodeDataError(
            "data.schema", str(exc), public=f"{source}: the company table is not usable (rule data.schema)"
        ) from None
    pseudonyms, report = _pseudonymize(settings, valid, report)
    keep = pseudonyms != ""
    valid, pseudonyms = valid[keep].reset_index(drop=True), pseudonyms[keep]
    allowed, filtered = usable(pseudonyms, gate, terms)
    valid, pseudonyms = valid[allowed].reset_index(drop=True), pseudonyms[allowed]
    reports = settings.data_dir / "node-reports"
    reports.mkdir(exist_ok=True)
    local = {**report.to_dict(), **filtered, "rows_used": len(valid)}
    (reports / f"{instructions.study_id}.validation.json").write_text(json.dumps(local, indent=2), "utf-8")
    if len(valid) == 0:
        raise NodeDeclined("data.empty", "no usable company row at this site")
    view = company_view(valid)
    return company_site_from_view(
        view,
        site=settings.site,
        study_id=instructions.study_id,
        gate=gate,
        terms=terms,
        lloyd_iterations=instructions.num_rounds,
        sirets=valid["siret"].astype(str).to_numpy(),
        pseudonyms=pseudonyms,
        labels_path=reports / f"{instructions.study_id}.company_types.csv",
    )


def company_site_from_view(
    view: pd.DataFrame,
    *,
    site: str,
    study_id: str,
    gate: StudyGate,
    terms: StudyTerms,
    lloyd_iterations: int,
    sirets: np.ndarray,
    pseudonyms: np.ndarray,
    labels_path: Path | None = None,
    randomness: NodeRandomness | None = None,
) -> CompanySite:
    """The release-ready site from an analysis view (also what the benchmark builds directly)."""
    fields = terms.fields or get_task(TASK).default_fields()
    if "skill_need" not in fields or "rome_sought" not in fields:
        raise NodeDeclined("grant.fields", "the skill-needs model needs rome_sought and skill_need")
    features = CompanyFeatures(tuple(fields))
    delta = site_delta(terms.delta, len(view))
    try:
        sigma = noise_multiplier_for(terms.target_epsilon, delta, planned_releases(lloyd_iterations))
    except ValueError as exc:
        raise NodeDeclined("dp.plan", str(exc)) from None
    return CompanySite(
        site=site,
        study_id=study_id,
        gate=gate,
        features=features,
        x=features.encode(view),
        sirets=sirets,
        pseudonyms=pseudonyms,
        sought=skill_needs.top_sought(domain_shares(view["rome_sought"].tolist())),
        needs=skill_need_domains(view["skill_need"].tolist()),
        sigma=sigma,
        delta=delta,
        lloyd_iterations=lloyd_iterations,
        randomness=randomness or NodeRandomness(),
        labels_path=labels_path,
    )


def _pseudonymize(
    settings: NodeSettings, valid: pd.DataFrame, report: ValidationReport
) -> tuple[np.ndarray, ValidationReport]:
    """Linkage pseudonyms of the SIRETs (``anonymization``); an invalid SIRET leaves its row out."""
    from anonymization import Pseudonymizer
    from tasks.companies import RowProblem

    from .preparation import site_linkage_key

    column = Pseudonymizer(site_linkage_key(settings)).pseudonymize_column("siret", valid["siret"].tolist())
    for position in [*column.rejected_rows, *column.empty_rows]:
        report.problems.append(
            RowProblem(
                report.file,
                int(valid.index[position]) + 2,
                "siret",
                "company.siret_invalid",
                "not a valid SIRET",
            )
        )
    return np.array([p or "" for p in column.pseudonyms], dtype=object), report


_SITES: dict[tuple[str, str], CompanySite] = {}


def open_company_site(
    settings: NodeSettings, instructions: StudyInstructions, gate: Callable[[NodeSettings], StudyGate]
) -> CompanySite:
    """The site's session for this study, prepared once per process."""
    key = (settings.site, instructions.study_id)
    if key not in _SITES:
        _SITES[key] = prepare_company_site(settings, instructions, gate(settings))
    return _SITES[key]


# --------------------------------------------------------------------------- the Flower handler


def answer_company_query(msg: Message, context: Context) -> Message:
    """``query.company_clustering``: one step of the study, or a ``Decline`` naming the rule."""
    from flwr.app import ConfigRecord

    from contracts.instructions import RecordError
    from contracts.queries import ClusteringMessage, ClusteringStepReply
    from tasks.clustering_protocol import ProtocolError

    from .client_app import _gate
    from .declined import answer_or_decline

    def answer(settings: NodeSettings) -> RecordDict:
        step = ClusteringMessage.from_record(msg.content)
        company_site = open_company_site(settings, step.instructions, _gate)
        key = f"company-releases:{step.instructions.study_id}"
        if key not in context.state:
            context.state[key] = ConfigRecord({"done": []})
        done = set(read_strs(context.state.config_records[key], "done"))
        reply = company_site.answer(step.request, done)
        context.state[key] = ConfigRecord({"done": sorted(done)})
        return ClusteringStepReply(reply).to_record()

    return answer_or_decline(msg, context, answer, bad_message=(ProtocolError, RecordError))
