"""UCI Adult loader, non-IID split and site files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from node_agent.sources import load_file
from simulations.adult import load_adult_test, load_adult_train, split_non_iid, write_adult_sites
from tasks.schema import ADULT_COLUMNS, validate_adult


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return load_adult_train()


def test_training_split_loads_with_the_published_counts(train: pd.DataFrame) -> None:
    assert list(train.columns) == list(ADULT_COLUMNS)
    assert len(train) == 32_561
    assert train["income"].value_counts().to_dict() == {"<=50K": 24_720, ">50K": 7_841}
    assert (train["workclass"] == "").sum() == 1_836  # '?' became empty
    assert not train.isin(["?"]).any().any()
    assert train["age"].dtype == "int64"


def test_test_split_skips_the_junk_line_and_trailing_dots() -> None:
    test = load_adult_test()
    assert len(test) == 16_281
    assert test["income"].value_counts().to_dict() == {"<=50K": 12_435, ">50K": 3_846}
    assert test.iloc[0]["age"] == 25 and test.iloc[0]["education"] == "11th"


def test_split_is_a_partition_with_a_minimum_site_size(train: pd.DataFrame) -> None:
    frame = train.assign(row_id=np.arange(len(train)))
    parts = split_non_iid(frame, 5, seed=3, alpha=0.5, min_size=500)
    assert sum(len(p) for p in parts) == len(frame)
    ids = np.concatenate([p["row_id"].to_numpy() for p in parts])
    assert np.array_equal(np.sort(ids), np.arange(len(frame)))
    assert min(len(p) for p in parts) >= 500


def test_small_alpha_makes_sites_measurably_different(train: pd.DataFrame) -> None:
    def spread(alpha: float) -> float:
        rates = [(p["income"] == ">50K").mean() for p in split_non_iid(train, 5, seed=11, alpha=alpha)]
        return max(rates) - min(rates)

    assert spread(0.3) > 0.2
    assert spread(1000.0) < 0.05


def test_split_over_another_attribute_skews_that_attribute(train: pd.DataFrame) -> None:
    parts = split_non_iid(train, 4, seed=5, alpha=0.3, by="occupation")
    top_share = [p["occupation"].value_counts(normalize=True).iloc[0] for p in parts]
    overall = train["occupation"].value_counts(normalize=True).iloc[0]
    assert max(top_share) > overall + 0.1


def test_same_seed_same_split(train: pd.DataFrame) -> None:
    first = split_non_iid(train, 3, seed=9)
    again = split_non_iid(train, 3, seed=9)
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))


def test_impossible_minimum_is_a_clear_error(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="cannot give"):
        split_non_iid(train, 100, seed=1, min_size=1000)
    with pytest.raises(ValueError, match="'salary'"):
        split_non_iid(train, 3, seed=1, by="salary")


def test_site_files_are_written_and_load_through_the_schema(tmp_path: Path) -> None:
    paths = write_adult_sites(tmp_path, 3, seed=2)
    assert sorted(paths) == ["site_1", "site_2", "site_3"]
    tables = {site: load_file(path, site, validate_adult) for site, path in paths.items()}
    assert sum(len(t) for t in tables.values()) == 32_561
    assert all(path == tmp_path / site / "adult.csv" for site, path in paths.items())
