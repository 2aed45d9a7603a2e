"""Values read out of Flower records are checked where read: one type back, or an error naming the key."""

import pytest

from tasks.clustering_protocol import ClusteringReply, ClusteringRequest, ProtocolError, Step
from tasks.record_values import read_float, read_floats, read_int, read_str, read_strs


def test_each_reader_returns_its_type():
    record = {"n": 3, "whole": 4.0, "text-n": "5", "x": 0.5, "s": "apec", "xs": [1, 2.5], "ss": ["a", "b"]}
    assert read_int(record, "n") == 3
    assert read_int(record, "whole") == 4
    assert read_int(record, "text-n") == 5
    assert read_float(record, "x") == 0.5
    assert read_str(record, "s") == "apec"
    assert read_floats(record, "xs") == [1.0, 2.5]
    assert read_strs(record, "ss") == ["a", "b"]


def test_a_missing_key_without_default_names_the_key_and_a_default_is_used_otherwise():
    with pytest.raises(KeyError, match="absent"):
        read_float({}, "absent")
    assert read_int({}, "absent", 7) == 7
    assert read_floats({}, "absent", None) == []


@pytest.mark.parametrize(
    ("reader", "value"),
    [
        (read_int, 2.5),
        (read_int, True),
        (read_int, [1]),
        (read_float, "not a number"),
        (read_float, False),
        (read_str, 3),
        (read_floats, ["1"]),
        (read_floats, 1.0),
        (read_strs, [1]),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(reader, value):
    with pytest.raises((TypeError, ValueError), match="'field'"):
        reader({"field": value}, "field")


def test_a_clustering_reply_with_a_text_where_numbers_belong_is_a_protocol_error():
    reply = ClusteringReply("apec", Step.CORESET, (1.0, 2.0), 0.5, 0.1, 1e-6, 1).to_config()
    assert ClusteringReply.from_config(reply).values == (1.0, 2.0)
    with pytest.raises(ProtocolError, match="values"):
        ClusteringReply.from_config({**reply, "values": ["1.0", "2.0"]})
    with pytest.raises(ProtocolError, match="releases"):
        ClusteringReply.from_config({**reply, "releases": 1.5})


def test_a_clustering_request_round_trips_and_refuses_ragged_centres():
    import numpy as np

    request = ClusteringRequest(Step.LLOYD, 2, np.arange(6.0).reshape(2, 3), ("a", "b"))
    back = ClusteringRequest.from_config(request.to_config())
    assert back.index == 2 and back.labels == ("a", "b")
    assert np.array_equal(back.centres, request.centres)
    with pytest.raises(ProtocolError, match="rows"):
        ClusteringRequest.from_config({**request.to_config(), "centre-rows": 4})
