"""The holdout is a property of each person (issue 10, item 5, finding 6): an opt-out moves nobody
else between holdout and training, in a fresh process, and the person who objected leaves both."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from anonymization import anonymize_parcours
from anonymization.keys import load_linkage_key
from node_agent.preparation import holdout_membership
from node_agent.settings import NodeSettings
from node_agent.sources import load_file
from simulations.partners import generate_partners
from tasks.registry import get_task
from trust_broker.provision import provision

SITE = "apec"
STUDY = "holdout-study"

# Run in a fresh interpreter, as each message is in deployment: the holdout's study pseudonyms.
_CHILD = """
import sys
from pathlib import Path
import pandas as pd
from node_agent.preparation import holdout_membership
from node_agent.settings import NodeSettings
frame = pd.read_pickle(sys.argv[1])
settings = NodeSettings(site="apec", data_dir=Path(sys.argv[2]), keys_dir=Path(sys.argv[3]))
held = holdout_membership(frame, settings=settings, study_id="holdout-study")
print("\\n".join(sorted(frame["study_pseudonym"][held])))
"""


def _view(tmp_path):
    keys = provision(tmp_path / "keys", (SITE,))
    path = generate_partners(tmp_path / "data", seed=11, people=900, sites=(SITE,))[SITE]
    fields = get_task("employment_outcome").default_fields()
    frame, _ = anonymize_parcours(
        load_file(path, SITE, get_task("employment_outcome").validate),
        source=SITE,
        linkage_key=load_linkage_key(keys.node_dir(SITE) / "linkage.key"),
        study_id=STUDY,
        fields=[*fields, "linkage_pseudonym"],
    )
    return frame, NodeSettings(site=SITE, data_dir=path.parent, keys_dir=keys.node_dir(SITE))


def test_one_opt_out_moves_no_other_record_between_holdout_and_training_across_processes(tmp_path):
    frame, settings = _view(tmp_path)
    before = holdout_membership(frame, settings=settings, study_id=STUDY)
    held = set(frame["study_pseudonym"][before])
    assert 140 <= len(held) <= 220  # about a fifth of 900 people

    objector = frame["linkage_pseudonym"][before].iloc[0]  # someone in the holdout objects
    filtered = frame[frame["linkage_pseudonym"] != objector].sample(frac=1.0, random_state=3)  # re-read
    filtered.to_pickle(tmp_path / "filtered.pkl")
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(tmp_path / "filtered.pkl"),
            str(settings.data_dir),
            str(settings.keys_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = set(child.stdout.split())
    gone = set(frame["study_pseudonym"][frame["linkage_pseudonym"] == objector])
    assert after == held - gone  # nobody else moved, either way
    assert gone and gone <= held


def test_the_holdout_depends_on_the_study_and_on_the_key(tmp_path):
    frame, settings = _view(tmp_path)
    one = holdout_membership(frame, settings=settings, study_id=STUDY)
    other = holdout_membership(frame, settings=settings, study_id="another-study")
    assert (one != other).sum() > 50
    shuffled = frame.sample(frac=1.0, random_state=5)
    again = pd.Series(holdout_membership(shuffled, settings=settings, study_id=STUDY), index=shuffled.index)
    assert (again.loc[frame.index].to_numpy() == one).all()


def test_a_person_who_objects_after_the_study_opened_leaves_the_holdout(tmp_path):
    from dataclasses import replace

    import numpy as np

    from node_agent.gate import StandaloneGate, StudyTerms
    from node_agent.local_data import SiteData
    from node_agent.site_study import SiteStudy

    class Registry(StandaloneGate):
        opted_out: set[str] = set()

        def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
            return frozenset(self.opted_out)

    keys = np.array([f"p1.k.{i}" for i in range(50)])
    data = SiteData(
        x_train=np.zeros((0, 1), np.float32),
        y_train=np.zeros(0, np.float32),
        x_test=np.arange(50, dtype=np.float32).reshape(-1, 1),
        y_test=np.zeros(50, np.float32),
        groups_test={"sex": np.array(["F"] * 50)},
        test_keys=keys,
    )
    gate = Registry()
    terms = StudyTerms(3.0, 1e-6, "parcours", "autodiagnostic_mobilite", "public_interest")
    study = SiteStudy(None, None, None, gate, terms, data, None)  # type: ignore[arg-type]
    assert len(study.holdout_set()[0]) == 50
    gate.opted_out = {"p1.k.7", "p1.k.unknown"}
    x, y, groups = study.holdout_set()
    assert len(x) == 49 and 7.0 not in x.ravel() and len(groups["sex"]) == 49
    assert replace(study, gate=gate).holdout_set()[0].shape == (49, 1)
