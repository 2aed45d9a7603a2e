"""The site's data, made ready for learning: loaded, validated, anonymized, filtered, encoded, split.

Nothing here leaves the node; only counts go into the node's report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.registry import TaskSpec
from tasks.schema import SchemaError

from .declined import NodeDataError
from .settings import NodeSettings
from .sources import site_source

#: Turns the validated raw table into the analysis view (anonymization) and reports counts.
Anonymize = Callable[[pd.DataFrame, str], tuple[pd.DataFrame, dict[str, object]]]


@dataclass
class SiteData:
    """Encoded training and holdout sets of one site for one study."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    groups_test: dict[str, np.ndarray]
    #: Linkage pseudonyms of the training records, to apply opt-outs that arrive between rounds.
    train_keys: np.ndarray | None = None
    #: Linkage pseudonyms of the holdout records: an opt-out leaves the holdout too.
    test_keys: np.ndarray | None = None
    counts: dict[str, object] = field(default_factory=dict)


def load_site_table(spec: TaskSpec, settings: NodeSettings) -> pd.DataFrame:
    """Read the task's dataset from the site's source (data folder or database, by the node's own
    settings) and validate it; a schema problem is a data error for the round.

    The one row rule (tasks.schema): any bad cell refuses the whole table, every problem with its
    line (or row), field and rule — in full in the partner's log, without cell values in the
    Region's report.
    """
    try:
        return site_source(settings, spec.dataset, spec.file_name).load(spec.validate)
    except SchemaError as exc:
        raise NodeDataError("data.schema", str(exc), public=exc.public()) from None


def split_and_encode(
    spec: TaskSpec,
    frame: pd.DataFrame,
    *,
    fields: tuple[str, ...],
    counts: dict[str, object],
    holdout: np.ndarray,
) -> SiteData:
    """Split by ``holdout`` (``preparation.holdout_membership``: a property of each person) and encode."""
    test, train = frame[holdout], frame[~holdout]
    encoder = spec.encoder_for(fields)
    counts.update({"train_records": len(train), "holdout_records": len(test)})
    return SiteData(
        x_train=encoder.encode(train),
        y_train=encoder.labels(train),
        x_test=encoder.encode(test),
        y_test=encoder.labels(test),
        groups_test=encoder.groups(test),
        train_keys=train["linkage_pseudonym"].astype(str).to_numpy()
        if "linkage_pseudonym" in train
        else None,
        test_keys=test["linkage_pseudonym"].astype(str).to_numpy() if "linkage_pseudonym" in test else None,
        counts=counts,
    )
