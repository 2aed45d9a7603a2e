"""Round instructions survive Flower's ConfigRecord and name what is missing."""

import pytest
from flwr.app import ConfigRecord

from contracts.instructions import InstructionError, StudyInstructions


def _instructions(**overrides):
    values = dict(
        study_id="s1",
        task="adult_income",
        num_rounds=3,
        local_epochs=1,
        batch_size=64,
        learning_rate=0.01,
        max_grad_norm=1.0,
        target_epsilon=3.0,
        delta=1e-6,
        seed=7,
        fields="age,income",
        grant="a.b.c",
    )
    values.update(overrides)
    return StudyInstructions(**values)


def test_instructions_round_trip_through_a_config_record():
    original = _instructions()
    assert StudyInstructions.from_config(ConfigRecord(original.to_config())) == original
    assert original.field_list == ("age", "income")


def test_a_missing_instruction_is_named():
    config = _instructions().to_config()
    del config["batch-size"]
    with pytest.raises(InstructionError, match="batch-size"):
        StudyInstructions.from_config(config)


def test_a_mistyped_instruction_is_named():
    config = _instructions().to_config()
    config["num-rounds"] = "three"
    with pytest.raises(InstructionError, match="num-rounds"):
        StudyInstructions.from_config(config)
