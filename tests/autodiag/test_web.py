"""The service as a person uses it, through FastAPI's TestClient: French pages, the answer, the
explanation owed under the CRPA, the counselor's view, bad input — and nothing kept or logged."""

from __future__ import annotations

import html
import logging
import re

import pytest
from autodiag_fixtures import ANSWERS

from autodiag import web
from autodiag.catalogue import catalogue
from autodiag.diagnosis import Profile, diagnose


def text(page: str) -> str:
    """What a person reads: tags dropped, entities decoded, runs of spaces as one (the narrow
    no-break space before % is kept: it is part of the French number)."""
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("path", ["/", "/comment", "/conseiller", "/modele"])
def test_pages_are_french_self_contained_and_set_no_cookie(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert "<script" not in response.text  # works without JavaScript
    assert not re.search(r'(src|href)="(https?:)?//', response.text)  # no external asset or font
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_every_form_control_has_a_label(client):
    html = client.get("/").text
    ids = set(re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html))
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and ids <= labelled


def test_the_form_asks_no_name_no_identifier_no_sex_no_age(client):
    names = set(re.findall(r'<(?:input|select)[^>]*name="([^"]+)"', client.get("/").text))
    assert names == {"metier", "lieu", "zone", "diplome", "mois", "rayon", "permis", "formation", "precedent"}


def test_a_diagnosis_answers_every_part_the_issue_asks_for(client):
    response = client.post("/diagnostic", data=ANSWERS)
    assert response.status_code == 200, text(response.text)[:500]
    page = text(response.text)
    assert re.search(r"Votre chance de retrouver un emploi dans les six mois \d+\u202f%", page)
    assert re.search(r"entre \d+\u202f% et \d+\u202f% \(intervalle à 95 %\)", page)
    assert "Délai médian estimé" in page
    assert "Ce qui pèse dans votre résultat" in page and "Permis de conduire" in page
    assert "Obtenir le permis de conduire" in page  # a lever the person controls
    assert "Des métiers proches" in page and "Auxiliaire de puériculture" in page  # ROME mobility graph
    assert "projets de recrutement en 2024" in page and "jugés difficiles" in page  # BMO 2024, bassin
    # Similar profiles: the person's cell of the released table, each figure with its interval.
    similar = "47 % avaient un emploi six mois après (vraisemblablement entre 41 % et 53 %)"
    assert similar.replace(" %", "\u202f%") in page
    assert "set-cookie" not in response.headers


def test_the_explanation_page_answers_the_four_crpa_items_for_this_person(client):
    page = text(client.post("/comment", data=ANSWERS).text)
    for heading in (
        "1. Quelle part l'algorithme a-t-il prise",
        "2. Quelles données, et d'où viennent-elles",
        "3. Quels paramètres, et quel poids pour votre situation",
        "4. Quelles opérations ont été effectuées",
    ):
        assert heading in page
    assert "Paramètres appliqués à votre situation et leur poids" in page
    assert "Aide-soignant / Aide-soignante" in page


def test_counselor_view_has_the_model_card_and_a_printable_summary(client):
    page = text(client.post("/conseiller/diagnostic", data=ANSWERS).text)
    assert "Fiche du modèle" in page and "France Travail" in page and "3,00" in page  # ε per site
    assert "porte de publication passée" in page and "Limites connues" in page
    summary = client.post("/conseiller/synthese", data=ANSWERS)
    assert summary.status_code == 200 and "Synthèse d'entretien" in summary.text


def test_contributions_add_up_to_the_chance(opened):
    cat = catalogue()
    profile = Profile(
        cat.appellations["10891"],
        cat.communes["13055"],
        "infra_bac",
        30,
        10,
        False,
        True,
        cat.appellations["10891"],
    )
    diagnosis = diagnose(opened.model, cat, profile)
    total = diagnosis.reference_chance + sum(f.contribution for f in diagnosis.factors)
    assert total == pytest.approx(diagnosis.chance.value, abs=1e-6)
    # Checked against a direct evaluation of the model on the person's row.
    assert diagnosis.chance.value == pytest.approx(opened.model.chances([profile.model_row()])[0], abs=1e-6)


def test_an_ambiguous_occupation_offers_choices_then_answers(client):
    first = client.post("/diagnostic", data={**ANSWERS, "metier": "aide soignant"})
    assert first.status_code == 200
    assert "Plusieurs métiers correspondent" in first.text
    code = re.search(r'name="metier_code" value="(\d+)"', first.text).group(1)
    second = client.post("/diagnostic", data={**ANSWERS, "metier": "aide soignant", "metier_code": code})
    assert "Votre chance" in second.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("metier", "zzzqqq", "Aucun métier du ROME ne correspond"),
        ("metier", "", "Indiquez le métier que vous visez"),
        ("lieu", "Paris", "n'est pas une commune de Provence-Alpes-Côte d'Azur"),
        ("mois", "-3", "doit être entre 0 et 240"),
        ("mois", "douze", "doit être un nombre entier"),
        ("rayon", "9999", "doit être entre 0 et 200"),
        ("diplome", "doctorat", "Choisissez votre niveau de diplôme"),
        ("permis", "peut-être", "Répondez par oui ou non"),
        ("zone", "9999", "Cette zone d'emploi n'existe pas"),
    ],
)
def test_bad_input_gets_a_french_message_never_a_trace(client, field, value, message):
    data = {**ANSWERS, field: value}
    if field == "zone":
        data["lieu"] = ""
    response = client.post("/diagnostic", data=data)
    assert response.status_code == 422
    assert message in text(response.text)
    assert "Traceback" not in response.text and "Error" not in response.text
    assert 'aria-invalid="true"' in response.text  # the field is marked for assistive technologies


def test_unknown_page_and_method_are_french(client):
    assert "Cette page n'existe pas" in text(client.get("/admin").text)
    assert client.get("/diagnostic").status_code == 405
    assert "depuis le formulaire" in client.get("/diagnostic").text


def test_a_failure_shows_a_french_page_and_logs_no_answer(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError(f"boom with {ANSWERS['lieu']} and {ANSWERS['metier']}")

    monkeypatch.setattr(web, "diagnose", broken)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/diagnostic", data=ANSWERS)
    assert response.status_code == 500
    assert "n'a pas pu calculer votre diagnostic" in text(response.text) and "boom" not in response.text
    assert "ValueError" in caplog.text  # the failure is logged by its type only
    assert "Marseille" not in caplog.text and "gériatrie" not in caplog.text


def test_no_answer_reaches_any_log(client, caplog):
    with caplog.at_level(logging.DEBUG):
        client.post("/diagnostic", data={**ANSWERS, "lieu": "Sisteron", "mois": "137"})
        client.post("/comment", data={**ANSWERS, "lieu": "Sisteron", "mois": "137"})
    assert "Sisteron" not in caplog.text and "137" not in caplog.text


def test_an_oversized_form_is_refused_in_french(client):
    response = client.post("/diagnostic", data={**ANSWERS, "precedent": "x" * 20000})
    assert response.status_code == 413 and "trop long" in response.text


def test_what_a_person_types_is_escaped_never_run(client):
    attack = '<script>alert("x")</script>'
    response = client.post("/diagnostic", data={**ANSWERS, "metier": attack, "lieu": attack})
    assert response.status_code == 422
    assert "<script" not in response.text and "&lt;script&gt;" in response.text


def test_the_memoised_row_encoder_gives_the_task_encoder_s_numbers(opened):
    """The service's fast path must feed the model exactly what the task's encoder computes."""
    import numpy as np
    import pandas as pd

    from tasks.registry import EDUCATION_LEVELS

    rng = np.random.default_rng(4)
    romes = ["J1501", "M1607", "D1507", "N4101", "G1603", "K1302"]
    zones = ["9312", "9318", "0053", "9310"]

    def person() -> dict[str, object]:
        return {
            "zone_emploi": str(rng.choice(zones)),
            "rome_target": str(rng.choice(romes)),
            "rome_previous": str(rng.choice([*romes, ""])),
            "education_level": str(rng.choice(EDUCATION_LEVELS)),
            "months_unemployed": int(rng.integers(0, 60)),
            "mobility_km": int(rng.integers(0, 200)),
            "driving_licence": int(rng.integers(0, 2)),
            "training_followed": int(rng.integers(0, 2)),
        }

    model = opened.model
    for size in (1, 7, 40):  # later batches mix stored and unseen values
        rows = [person() for _ in range(size)]
        expected = model.encoder.encode(pd.DataFrame(rows))
        assert np.array_equal(model.rows.encode(rows), expected)
