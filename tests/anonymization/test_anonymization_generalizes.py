"""Attack tests from issue 12: notes written unlike the generator's must not leak.

Each case is a string the scrubber of 81b737c left readable. The rule under test: a checksum or a
numbering plan may decide an entity's type, never whether an identifier-shaped string is removed.
"""

from __future__ import annotations

import pytest


def readable_after_scrub(scrubber, text: str, secret: str) -> bool:
    """Whether any letter or digit group of `secret` survives scrubbing."""
    out = scrubber.scrub(text)
    return any(part in out for part in secret.replace(",", " ").split() if len(part) > 1 and part.isalnum())


@pytest.mark.parametrize(
    "text,secret",
    [
        ("Tél : 07 20 48 13 26", "07 20 48 13 26"),
        ("tel 07 00 12 34 56 apres 18h", "07 00 12 34 56"),
        ("joignable au 07 12 34 56 78", "07 12 34 56 78"),
        ("vit à la Réunion, joignable au +33 6 93 41 22 87", "+33 6 93 41 22 87"),
        ("num : 0693452318", "0693452318"),
        ("Appeler le +262 692 33 71 05 avant midi", "+262 692 33 71 05"),
        ("Numéro : 0033 6 12 34 56 78", "0033 6 12 34 56 78"),
        ("rappeler au 06/45/12/78/90", "06/45/12/78/90"),
        ("Tél : 06 123 456 78", "06 123 456 78"),
        ("Polynésie : +689 87 21 45 63", "+689 87 21 45 63"),
    ],
)
def test_phones_in_any_french_notation_and_range_are_removed(scrubber, text: str, secret: str) -> None:
    assert not readable_after_scrub(scrubber, text, secret)


@pytest.mark.parametrize(
    "text,secret",
    [
        ("NIR 1 85 05 78 006 084 37 à vérifier", "1 85 05 78 006 084 37"),  # wrong key
        ("sécu 1850578006084 (clé illisible)", "1850578006084"),  # no key
        ("Employeur siret 443 061 841 00048", "443 061 841 00048"),  # wrong Luhn
        ("siren 812345679 à confirmer", "812345679"),  # wrong Luhn
        ("IBAN FR76 3000 6000 0112 3456 7890 188", "FR76 3000 6000 0112 3456 7890 188"),  # wrong mod 97
        ("identifiant pole emploi 2233445p", "2233445p"),
        ("email: jdupont@gmail.con", "jdupont gmail con"),
    ],
)
def test_identifiers_are_removed_whatever_their_checksum(scrubber, text: str, secret: str) -> None:
    assert not readable_after_scrub(scrubber, text, secret)


@pytest.mark.parametrize(
    "text,secret",
    [
        ("rdv avec Mme sophie lefebvre ce matin", "sophie lefebvre"),
        ("entretien avec jean-pierre martin, ancien chef de chantier", "jean-pierre martin"),
        # a first name that is also a town, before an upper-case surname (found by the property test)
        ("Entretien avec Paris ADELAIDE, joignable au bureau.", "Paris ADELAIDE"),
        ("mr benali joignable apres 18h", "benali"),
        ("madame el amrani fatima zahra souhaite une formation", "amrani fatima zahra"),
        ("Nom : dupont ; prénom : marie", "dupont marie"),
        ("vu ac samir ce matin", "samir"),
        ("M. DA SILVA cherche un CDI", "DA SILVA"),
    ],
)
def test_names_in_any_case_after_civilities_and_in_name_positions(scrubber, text: str, secret: str) -> None:
    assert not readable_after_scrub(scrubber, text, secret)


@pytest.mark.parametrize(
    "text,address",
    [
        (
            "Adresse : résidence Les Pins bât B apt 12, 14 chemin de la Colline 13013 Marseille",
            "résidence Les Pins bât B apt 12, 14 chemin de la Colline 13013 Marseille",
        ),
        ("adresse postale : BP 45, 04100 Manosque", "BP 45, 04100 Manosque"),
        ("Domicilié lieu-dit La Plaine, 84220 Gordes.", "lieu-dit La Plaine, 84220 Gordes"),
        (
            "Courrier : 12 avenue Jean Jaurès, CS 30012, 06300 Nice Cedex 4.",
            "12 avenue Jean Jaurès, CS 30012, 06300 Nice Cedex 4",
        ),
        ("habite au 22 bis rue de la république 83000 toulon", "22 bis rue de la république 83000 toulon"),
    ],
)
def test_whole_addresses_with_their_complements_are_one_span(scrubber, text: str, address: str) -> None:
    spans = scrubber.analyze_batch([text])[0]
    assert [(s.entity_type, text[s.start : s.end]) for s in spans] == [("FR_ADDRESS", address)]


@pytest.mark.parametrize(
    "text",
    [
        "Cet emploi est accessible sans qualification ; une formation courte peut en faciliter l'accès.",
        "Entreprise de 10 000 salariés à Marignane, recrutement de 40 ajusteurs en 2025.",
        "RDV le 03/04/2025 à 14h30 à l'agence de Martigues ; appel au 3949 pour l'actualisation.",
        "Prochain rendez-vous le 06/12/2023 10:30, puis le 06.12.2023 14 h et le 06-12-2023 09 h 30.",
        "Réalise des travaux de taille de pierre et de maçonnerie sur des chantiers de restauration.",
        "Suit des cours de Français langue étrangère ; mise en place d'un plan d'action.",
    ],
)
def test_pii_free_job_texts_stay_intact(scrubber, text: str) -> None:
    assert scrubber.scrub(text) == text
