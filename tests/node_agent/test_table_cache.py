"""The site's prepared table on the node's disk (issue 17): prepared by a study's first message,
reused by the next ones, rebuilt when the data or the grant changes or the file was altered, kept
with the node's permissions, without identifiers, and deleted when the study ends."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contracts.instructions import StudyInstructions
from node_agent import site_study
from node_agent.declined import NodeDeclined
from node_agent.gate import StudyGate, StudyTerms
from node_agent.settings import NodeSettings
from node_agent.table_cache import FOLDER, KEY_FILE, TableCache
from simulations.partners import generate_partners
from tasks.registry import get_task

SITE = "france_travail"
TASK = get_task("employment_outcome")


class Gate(StudyGate):
    """Stands in for the broker: admits (or refuses with ``refuse``), no opt-out, no ledger."""

    def __init__(self, expires_at: dt.datetime | None = None, refuse: str | None = None) -> None:
        self.expires_at = expires_at or dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        self.refuse = refuse

    def admit(self, instructions, spec):  # type: ignore[no-untyped-def]
        if self.refuse:
            raise NodeDeclined(self.refuse, "refused by the test")
        fields = TASK.default_fields()
        return StudyTerms(3.0, 1e-5, "parcours", "autodiagnostic_mobilite", "public_interest", fields,
                          expires_at=self.expires_at)  # fmt: skip

    def still_granted(self) -> None:
        return None

    def excluded(self, terms: StudyTerms) -> frozenset[str] | None:
        return frozenset()

    def consented(self, terms: StudyTerms) -> frozenset[str] | None:
        return None

    def reserve(self, request_id: str, mechanism: Mapping[str, object], examples: int) -> str:
        return request_id

    def commit(self, reservation_id: str, mechanism: Mapping[str, object]) -> None:
        return None

    def release(self, reservation_id: str) -> None:
        return None

    def report(self, counts: Mapping[str, object]) -> None:
        return None


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("partner")
    generate_partners(root, seed=5, people=500, sites=(SITE,))
    return Path(root / SITE)


@pytest.fixture
def settings(tmp_path: Path, partner: Path) -> NodeSettings:
    data = tmp_path / SITE
    data.mkdir()
    (data / TASK.file_name).write_bytes((partner / TASK.file_name).read_bytes())
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "linkage.key").write_text("ef" * 32)
    os.chmod(keys / "linkage.key", 0o600)
    return NodeSettings(site=SITE, data_dir=data, keys_dir=keys, state_dir=tmp_path / "state")


@pytest.fixture
def preparations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A spy on the real preparation: every call is counted, and still runs."""
    calls: list[str] = []
    real = site_study.anonymized_view  # type: ignore[attr-defined]

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs["study_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(site_study, "anonymized_view", counted)
    return calls


def _instructions(study: str = "cache-study", grant: str = "grant-1") -> StudyInstructions:
    return StudyInstructions(study, TASK.name, 2, 1, 64, 0.01, 1.0, 3.0, 1e-5, 0, grant=grant)


def _message(settings: NodeSettings, gate: Gate | None = None, **instructions: str) -> site_study.SiteStudy:
    """One message as a fresh deployment process handles it: no session left in memory."""
    site_study._SESSIONS.clear()
    return site_study.open_site_study(settings, _instructions(**instructions), lambda _: gate or Gate())


def _table(settings: NodeSettings, study: str = "cache-study") -> Path:
    return settings.state_folder / FOLDER / f"{study}.table"


def test_the_second_message_reuses_the_table_and_sees_the_same_data(
    settings: NodeSettings, preparations: list[str]
) -> None:
    first = _message(settings)
    second = _message(settings)
    assert preparations == ["cache-study"]  # prepared once
    np.testing.assert_array_equal(first.data.x_train, second.data.x_train)
    np.testing.assert_array_equal(first.data.y_test, second.data.y_test)
    np.testing.assert_array_equal(first.data.train_keys, second.data.train_keys)
    assert first.data.counts == second.data.counts
    assert first.plan == second.plan


def test_a_change_of_data_or_grant_prepares_again(settings: NodeSettings, preparations: list[str]) -> None:
    _message(settings)
    path = settings.data_dir / TASK.file_name
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(rows[:-50]), encoding="utf-8")  # the partner's file changed
    changed = _message(settings)
    assert len(preparations) == 2
    assert changed.data.counts["records_loaded"] == len(rows) - 51
    _message(settings, grant="grant-2")  # a new grant for the study
    assert len(preparations) == 3
    _message(settings, grant="grant-2")
    assert len(preparations) == 3


def test_a_rotated_linkage_key_prepares_again(settings: NodeSettings, preparations: list[str]) -> None:
    """The table holds the pseudonyms opt-outs are matched against: after a key rotation, old-key
    pseudonyms would match no new objection, and people who objected would stay in training."""
    first = _message(settings)
    assert settings.keys_dir is not None
    (settings.keys_dir / "linkage.key").write_text("cd" * 32)
    rotated = _message(settings)
    assert len(preparations) == 2
    assert set(first.data.train_keys).isdisjoint(rotated.data.train_keys)


def test_files_have_the_node_permissions_and_no_identifier(
    settings: NodeSettings, preparations: list[str]
) -> None:
    os.umask(0o022)
    (settings.state_folder / FOLDER).mkdir(parents=True, mode=0o755)  # left wide by an older node
    _message(settings)
    folder = settings.state_folder / FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = {p.name for p in folder.iterdir()}
    calibration = {n for n in names if n.startswith("cache-study~calibration-")}
    assert len(calibration) == 1
    assert names - calibration == {KEY_FILE, "cache-study.table"}  # no temporary file left behind
    for name in names:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    stored = _table(settings).read_bytes()
    raw = pd.read_csv(settings.data_dir / TASK.file_name, dtype=str)
    for column in ("nir", "email", "ft_id"):
        for value in raw[column].dropna().head(50):
            assert value.encode() not in stored, column


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "foreign key"])
def test_an_altered_file_is_rejected_and_rebuilt(
    settings: NodeSettings, preparations: list[str], damage: str
) -> None:
    honest = _message(settings)
    path = _table(settings)
    blob = bytearray(path.read_bytes())
    if damage == "flip a byte":
        blob[-100] ^= 0x01
        path.write_bytes(bytes(blob))
    elif damage == "truncate":
        path.write_bytes(bytes(blob[: len(blob) // 2]))
    else:  # a table made elsewhere (another node's key): valid format, not this node's MAC
        other = TableCache(settings.state_folder.parent / "elsewhere")
        other.prepared("cache-study", "k", lambda: (pd.DataFrame({"x": [1]}), {}), expires_at=None)
        path.write_bytes((other.folder / "cache-study.table").read_bytes())
    rebuilt = _message(settings)
    assert len(preparations) == 2
    np.testing.assert_array_equal(honest.data.x_train, rebuilt.data.x_train)
    _message(settings)
    assert len(preparations) == 2  # the rebuilt file is good again


def test_a_revoked_or_expired_study_loses_its_table(settings: NodeSettings, preparations: list[str]) -> None:
    _message(settings)
    assert _table(settings).exists()
    with pytest.raises(NodeDeclined):
        _message(settings, Gate(refuse="site.policy_missing"))  # not an end of study: kept
    assert _table(settings).exists()
    with pytest.raises(NodeDeclined):
        _message(settings, Gate(refuse="grant.revoked"))
    assert not _table(settings).exists()


def test_tables_of_expired_grants_are_swept(settings: NodeSettings, preparations: list[str]) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _message(settings, Gate(expires_at=soon), study="old-study")
    _message(settings, study="new-study")  # its grant runs 30 days
    TableCache(settings.state_folder).sweep(now=soon + dt.timedelta(seconds=1))  # what every store runs
    assert not _table(settings, "old-study").exists()
    assert _table(settings, "new-study").exists()


@pytest.fixture
def calibrations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A spy on the real σ search: every call is counted, and still runs."""
    calls: list[int] = []
    real = site_study._training_plan

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(site_study, "_training_plan", counted)
    return calls


def test_the_noise_calibration_is_remembered_and_never_follows_the_exact_count(
    settings: NodeSettings, calibrations: list[int]
) -> None:
    """The plan is a function of the study's *released* size (drawn once, node_agent.site_size):
    records removed mid-study change the prepared table, not the calibration a reply discloses."""
    first = _message(settings)
    again = _message(settings)
    assert len(calibrations) == 1 and again.plan == first.plan
    path = settings.data_dir / TASK.file_name
    rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(rows[:-80]), encoding="utf-8")  # fewer records, same study
    fewer = _message(settings)
    assert len(fewer.data.y_train) < len(first.data.y_train)  # the table was prepared again
    assert len(calibrations) == 1 and fewer.plan == first.plan


def test_a_lowered_sigma_in_the_node_files_is_not_used(
    settings: NodeSettings, calibrations: list[int]
) -> None:
    """Someone who can write the node's folder but not its key cannot make it add less noise."""
    honest = _message(settings)
    [path] = (settings.state_folder / FOLDER).glob("*~calibration-*.json")
    sigma = repr(honest.plan.noise_multiplier).encode()
    blob = path.read_bytes()
    assert sigma in blob
    path.write_bytes(blob.replace(sigma, b"0.01"))
    reopened = _message(settings)
    assert len(calibrations) == 2  # recomputed, not read
    assert reopened.plan.noise_multiplier == honest.plan.noise_multiplier


def test_the_end_of_a_study_deletes_its_calibrations_too(settings: NodeSettings) -> None:
    _message(settings)
    folder = settings.state_folder / FOLDER
    assert list(folder.glob("cache-study~calibration-*"))
    with pytest.raises(NodeDeclined):
        _message(settings, Gate(refuse="grant.expired"))
    assert not list(folder.glob("cache-study*"))


def test_a_missing_file_is_the_loader_s_refusal_not_a_crash(settings: NodeSettings) -> None:
    (settings.data_dir / TASK.file_name).unlink()
    with pytest.raises(NodeDeclined) as refused:
        _message(settings)
    assert refused.value.rule == "data.schema"
