"""Encoding uses fixed public vocabularies and only the fields a study was granted."""

import numpy as np
import pandas as pd
import pytest

from tasks.encoding import Categorical, Numeric, TabularEncoder
from tasks.registry import UnknownTaskError, get_task


def _encoder() -> TabularEncoder:
    return TabularEncoder(
        features=(Categorical("colour", ("red", "blue")), Numeric("size", lambda x: x / 10)),
        label="y",
        group_columns={"colour": "colour"},
    )


def test_unknown_category_goes_to_the_other_slot_not_to_a_new_column():
    encoded = _encoder().encode(
        pd.DataFrame({"colour": ["red", "green", None], "size": [10, 20, 0], "y": [1, 0, 1]})
    )
    assert encoded.shape == (3, 4)
    assert encoded[:, :3].tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert encoded[:, 3].tolist() == pytest.approx([1.0, 2.0, 0.0])


def test_two_sites_with_different_values_get_the_same_width():
    a = _encoder().encode(pd.DataFrame({"colour": ["red"], "size": [1], "y": [1]}))
    b = _encoder().encode(pd.DataFrame({"colour": ["blue", "blue"], "size": [1, 2], "y": [0, 1]}))
    assert a.shape[1] == b.shape[1] == _encoder().width


def test_restricted_encoder_never_reads_a_field_outside_the_grant():
    restricted = _encoder().restricted(["colour", "y"])
    frame = pd.DataFrame({"colour": ["red"], "y": [1]})  # no 'size' column at all
    assert restricted.encode(frame).shape == (1, 3)
    assert restricted.feature_names == ["colour=red", "colour=blue", "colour=other"]


def test_restriction_without_the_label_is_refused():
    with pytest.raises(ValueError, match="label"):
        _encoder().restricted(["colour"])


def test_parcours_encoder_drops_mobility_when_a_site_does_not_expose_it():
    spec = get_task("employment_outcome")
    fields = tuple(f for f in spec.default_fields() if f != "mobility_km")
    names = spec.encoder_for(fields).feature_names
    assert "mobility_km" not in names and "tension" in names
    assert spec.encoder_for(fields).width == spec.encoder().width - 1


def test_adult_labels_accept_the_test_files_trailing_dot():
    spec = get_task("adult_income")
    labels = spec.encoder().labels(pd.DataFrame({"income": [">50K", ">50K.", "<=50K", "<=50K."]}))
    assert labels.tolist() == [1, 1, 0, 0]
    assert labels.dtype == np.float32


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError) as caught:
        get_task("salary_prediction")
    assert "employment_outcome" in str(caught.value) and "adult_income" in str(caught.value)


def test_a_fairness_attribute_outside_the_grant_gets_no_cells():
    """Sex and age band are measured without being inputs; a grant without them must drop their
    cells too, or the node would read a column the grant left out (review of the merge)."""
    from tasks.metrics import HoldoutLayout
    from tasks.registry import get_task

    spec = get_task("employment_outcome")
    granted = HoldoutLayout.for_encoder(spec.encoder_for(spec.default_fields()))
    assert {name for name, _ in granted.groups} == {"sex", "age_band"}
    without_sex = [f for f in spec.default_fields() if f != "sex"]
    layout = HoldoutLayout.for_encoder(spec.encoder_for(tuple(without_sex)))
    assert {name for name, _ in layout.groups} == {"age_band"}
