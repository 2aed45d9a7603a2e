"""What-if explanations come from the model alone and only over granted fields."""

import torch

from coordinator.explanations import what_if
from tasks.models import mlp
from tasks.registry import get_task


def _model_leaning_on(encoder, feature: str, weight: float) -> torch.nn.Module:
    """A linear 'model' whose only effect is one named feature, so the expected answer is known."""
    model = mlp(encoder.width, ())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[0].weight[0, encoder.feature_names.index(feature)] = weight
    return model


def test_the_factor_the_model_uses_moves_the_chance_and_others_do_not():
    spec = get_task("employment_outcome")
    encoder = spec.encoder()
    explained = what_if(_model_leaning_on(encoder, "driving_licence", 2.0), encoder, spec.what_if)
    licence = explained["factors"]["driving_licence"]
    assert licence["0"] == 0.5 and licence["1"] > 0.85
    assert explained["factors_by_influence"][0] == "driving_licence"
    assert "sex" not in explained["factors"]  # sex is not a model input (autodiagnostic purpose)


def test_factors_outside_the_grant_are_not_explained():
    spec = get_task("employment_outcome")
    fields = tuple(f for f in spec.default_fields() if f != "mobility_km")
    encoder = spec.encoder_for(fields)
    explained = what_if(mlp(encoder.width, (8,)), encoder, spec.what_if)
    assert "mobility_km" not in explained["factors"]
    assert "mobility_km" not in explained["reference_profile"]
