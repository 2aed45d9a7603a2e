"""A curious coordinator reading a site's size in its train reply (issue 10, item 10 follow-up).

The attack: the coordinator sets the batch size B to a site's size and reads the reply's sample
rate. On the code before, q = 1/⌈n/B⌉ came from the exact count, so a site of n training records
replied q = 1 and the same site with one more person q = 1/2 (δ = 1/(10·n), the FedAvg weight 1/q
and the update's divisor q·n followed n too). Now every number of the reply but the noised update
is a function of the site's *released* size (n + N(0, 20²), once per study, charged to its ε): given
the same release, the reply for n and for n + 1 records is the same.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import ConfigRecord, Context, Message, Metadata, RecordDict

from contracts.records import model_arrays
from coordinator.study_config import StudyConfig
from node_agent import client_app, site_study
from node_agent.settings import resolve
from simulations.adult import load_adult_train
from tasks.models import mlp
from tasks.registry import get_task
from tasks.schema import ADULT_COLUMNS

SITE = "site_1"


@pytest.fixture(scope="module")
def adult_rows() -> pd.DataFrame:
    return load_adult_train().iloc[:601][list(ADULT_COLUMNS)]


def _site(folder: Path, rows: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "adult.csv", index=False, lineterminator="\n")
    return folder


def _config(batch_size: int) -> StudyConfig:
    return StudyConfig(
        study_id="size-attack",
        task="adult_income",
        sites=(SITE,),
        num_server_rounds=1,
        target_epsilon=2.0,
        local_epochs=1,
        batch_size=batch_size,
        learning_rate=0.01,
        seed=42,
    )


def _node_config(data_dir: Path) -> dict[str, bool | float | int | str]:
    return {"site": SITE, "data-dir": str(data_dir)}


def _open(data_dir: Path, config: StudyConfig) -> site_study.SiteStudy:
    site_study._SESSIONS.clear()  # a fresh process, as in deployment
    return site_study.open_site_study(
        resolve(_node_config(data_dir)), config.instructions(), client_app._gate
    )


def _train(data_dir: Path, config: StudyConfig) -> Message:
    site_study._SESSIONS.clear()
    spec = get_task(config.task)
    content = RecordDict(
        {
            "arrays": model_arrays(mlp(spec.encoder().width, spec.hidden, seed=1)),
            "config": ConfigRecord({**config.instructions().to_config(), "server-round": 1}),
        }
    )
    metadata = Metadata(
        run_id=1,
        message_id="train-1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type="train",
    )
    context = Context(
        run_id=1, node_id=1, node_config=_node_config(data_dir), state=RecordDict(), run_config={}
    )
    message = Message(content=content, metadata=metadata)  # type: ignore[call-overload]
    reply: Message = client_app.train(message, context)
    assert not reply.has_error(), reply.error.reason
    return reply


def _what_the_coordinator_reads(reply: Message) -> dict[str, object]:
    """Everything in the reply but the (DP-noised) update."""
    return {
        "metrics": dict(reply.content["metrics"]),
        "site": dict(reply.content["site"]),
    }


def _size_guess(reply: Message, batch_size: int) -> tuple[float, float]:
    """The coordinator's reading of the site's size: (B·(1/q − 1), B/q]."""
    steps = 1.0 / float(reply.content["metrics"]["sample-rate"])  # type: ignore[arg-type]
    return batch_size * (steps - 1), batch_size * steps


def test_a_site_and_the_same_site_with_one_more_person_reply_alike(
    tmp_path: Path, adult_rows: pd.DataFrame
) -> None:
    smaller = _site(tmp_path / "n" / SITE, adult_rows.iloc[:600])
    n = len(_open(smaller, _config(256)).data.y_train)
    # The coordinator's best batch for the attack: the site's size itself (q = 1 at n, 1/2 at n + 1).
    config = _config(n)
    larger = tmp_path / "n+1" / SITE
    shutil.copytree(smaller, larger)  # the same release of the size, as both worlds may draw it
    _site(larger, adult_rows.iloc[:601])
    assert len(_open(larger, config).data.y_train) == n + 1

    with_n, with_one_more = _train(smaller, config), _train(larger, config)
    assert _what_the_coordinator_reads(with_n) == _what_the_coordinator_reads(with_one_more)
    low, high = _size_guess(with_n, n)
    assert high - low == n  # within one batch, as before, but of the released size, not of n


def test_the_size_is_released_once_per_study_and_noisily(tmp_path: Path, adult_rows: pd.DataFrame) -> None:
    data_dir = _site(tmp_path / "a" / SITE, adult_rows.iloc[:600])
    config = _config(64)
    first = _open(data_dir, config)
    n = len(first.data.y_train)
    # Every later process reads the same release: the coordinator cannot average fresh draws.
    assert _open(data_dir, config).plan == first.plan
    assert first.plan.records == first.size.value and first.size.noise_std == 20.0
    # A node that lost its record draws afresh (a broker would refuse it: the size's request id is
    # settled): the releases differ, and are not n (noise of standard deviation 20 records lands
    # within half a record of 0 about 2 % of the time).
    draws = [first.size.value]
    for attempt in range(3):
        replica = _site(tmp_path / f"replica-{attempt}" / SITE, adult_rows.iloc[:600])
        draws.append(_open(replica, config).size.value)
    assert len(set(draws)) == len(draws)
    assert any(round(d) != n for d in draws)
    # What the plan spends on the size is in the study's ε: every round and the release compose
    # within the target.
    reply = _train(data_dir, config)
    assert 0 < float(reply.content["metrics"]["epsilon"]) <= 2.0  # type: ignore[arg-type]
    assert math.isfinite(first.plan.noise_multiplier)
    assert np.isclose(first.plan.expected_batch, first.plan.sample_rate * first.size.value)
