"""Opt-outs and consent withdrawals that reach the broker mid-study apply from the next round on."""

import numpy as np

from contracts.instructions import StudyInstructions
from node_agent.dp_plan import plan_study
from node_agent.gate import StandaloneGate, StudyTerms
from node_agent.local_data import SiteData
from node_agent.settings import NodeSettings
from node_agent.site_study import SiteStudy
from tasks.registry import get_task


class RegistryGate(StandaloneGate):
    """The broker's registries as a node sees them: whatever has been posted so far."""

    def __init__(self) -> None:
        self.opted_out: set[str] = set()
        self.consents: set[str] | None = None

    def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
        return frozenset(self.opted_out)

    def consented(self, terms: StudyTerms) -> frozenset[str] | None:
        return None if self.consents is None else frozenset(self.consents)


def _study(gate: RegistryGate, legal_basis: str = "public_interest") -> SiteStudy:
    keys = np.array([f"p1.k.{i}" for i in range(200)])
    data = SiteData(
        x_train=np.arange(200, dtype=np.float32).reshape(-1, 1),
        y_train=np.zeros(200, dtype=np.float32),
        x_test=np.zeros((0, 1), dtype=np.float32),
        y_test=np.zeros(0, dtype=np.float32),
        groups_test={},
        train_keys=keys,
    )
    terms = StudyTerms(3.0, 1e-6, "parcours", "autodiagnostic_mobilite", legal_basis)
    plan = plan_study(
        n_train=200,
        batch_size=50,
        local_epochs=1,
        rounds=2,
        target_epsilon=3.0,
        delta=1e-6,
        max_grad_norm=1.0,
    )
    instructions = StudyInstructions("s", "employment_outcome", 2, 1, 50, 0.01, 1.0, 3.0, 1e-6, 0)
    return SiteStudy(
        NodeSettings("a", data_dir=None),
        instructions,
        get_task("employment_outcome"),  # type: ignore[arg-type]
        gate,
        terms,
        data,
        plan,
    )


def test_an_objection_posted_between_rounds_removes_the_person_from_the_next_round():
    gate = RegistryGate()
    study = _study(gate)
    x, _, dropped = study.training_set()
    assert len(x) == 200 and dropped == 0
    gate.opted_out |= {"p1.k.3", "p1.k.150", "p1.k.unknown"}
    x, _, dropped = study.training_set()
    assert dropped == 2 and len(x) == 198 and {3.0, 150.0}.isdisjoint(x.ravel().tolist())


def test_a_consent_withdrawn_between_rounds_removes_the_person_under_a_consent_purpose():
    gate = RegistryGate()
    gate.consents = {f"p1.k.{i}" for i in range(200)}
    study = _study(gate, legal_basis="consent")
    assert len(study.training_set()[0]) == 200
    gate.consents.discard("p1.k.7")
    x, _, dropped = study.training_set()
    assert dropped == 1 and 7.0 not in x.ravel().tolist()
