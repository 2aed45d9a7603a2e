"""Each recognizer on positive cases written the ways people write them, and on tricky negatives."""

from __future__ import annotations

import random

import pii_factory as f
import pytest


def found(scrubber, text: str) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start : s.end]) for s in scrubber.analyze_batch([text])[0]]


def types(scrubber, text: str) -> set[str]:
    return {t for t, _ in found(scrubber, text)}


def test_nir_found_in_every_notation_including_corsica(scrubber) -> None:
    rng = random.Random(7)
    texts, values = [], []
    for i in range(24):
        value = f.write_nir(f.nir(rng, corsica=i % 4 == 0), rng)
        values.append(value)
        texts.append(f"Son numéro de sécurité sociale est le {value} selon le dossier.")
    for text, value, spans in zip(texts, values, scrubber.analyze_batch(texts), strict=True):
        assert [(s.entity_type, text[s.start : s.end]) for s in spans] == [("FR_NIR", value)]


def test_nir_with_a_wrong_key_is_still_removed_as_a_nir(scrubber) -> None:
    """A typo in the key leaves eleven digits that identify the person: the key decides nothing."""
    rng = random.Random(8)
    for _ in range(10):
        nir = f.wrong_key_nir(rng)
        assert found(scrubber, f"Numéro de sécurité sociale : {nir}.") == [("FR_NIR", nir)]


@pytest.mark.parametrize("style", range(6))
def test_french_phones_found_in_every_notation(scrubber, style: int) -> None:
    rng = random.Random(style)
    phone = f.mobile(rng)
    pairs = [phone[i : i + 2] for i in range(0, 10, 2)]
    written = [
        phone,
        " ".join(pairs),
        ".".join(pairs),
        "-".join(pairs),
        "+33 " + phone[1] + " " + " ".join(pairs[1:]),
        "+33" + phone[1:],
    ][style]
    assert found(scrubber, f"Elle est joignable au {written} le matin.") == [("FR_PHONE", written)]


@pytest.mark.parametrize(
    "text",
    [
        "Son ancien numéro américain +1 212 555 0100 ne sert plus.",
        "Référence dossier 1234567890 transmise au service.",
        "Montant de 0612 euros versé.",
    ],
)
def test_non_french_or_impossible_numbers_are_not_phones(scrubber, text: str) -> None:
    assert "FR_PHONE" not in types(scrubber, text)


def test_siret_and_siren_are_removed_whatever_their_luhn(scrubber) -> None:
    rng = random.Random(9)
    siret = f.siret(rng)
    grouped = f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    assert found(scrubber, f"Employeur : SIRET {grouped}.") == [("FR_SIRET", grouped)]
    assert found(scrubber, f"Employeur : SIRET {siret}.") == [("FR_SIRET", siret)]
    bad = f.luhn_invalid(siret)
    assert found(scrubber, f"Employeur : SIRET {bad}.") == [("FR_SIRET", bad)]
    siren = f.siren(rng)
    assert found(scrubber, f"Entreprise au SIREN {siren}.") == [("FR_SIREN", siren)]
    bad = f.luhn_invalid(siren)
    assert found(scrubber, f"Entreprise au SIREN {bad}.") == [("FR_SIREN", bad)]


def test_iban_email_and_france_travail_id(scrubber) -> None:
    rng = random.Random(10)
    iban = f.write_iban(f.iban_fr(rng), rng)
    assert found(scrubber, f"Coordonnées bancaires : {iban}.") == [("IBAN_CODE", iban)]
    bad_iban = "FR7630006000011234567890188"
    assert found(scrubber, f"IBAN {bad_iban}") == [("IBAN_CODE", bad_iban)]  # mod 97 decides nothing
    assert found(scrubber, "Écrire à jean.dupont@orange.fr demain.") == [
        ("EMAIL_ADDRESS", "jean.dupont@orange.fr")
    ]
    assert found(scrubber, "Mail : jdupont@gmail.con (mal saisi).") == [
        ("EMAIL_ADDRESS", "jdupont@gmail.con")
    ]
    ft = f.ft_id(rng)
    assert found(scrubber, f"Identifiant France Travail {ft}.") == [("FR_FT_ID", ft)]
    assert types(scrubber, "Un budget de 12345678 euros pour la formation.") == set()


@pytest.mark.parametrize(
    "address",
    [
        "12 rue des Lilas",
        "3 bis, avenue de la République 13001 Marseille",
        "145 boulevard Jean Jaurès, 83000 Toulon",
        "8 impasse du Moulin",
        "27 chemin de l'Église 04000 Digne-les-Bains",
        "2 rue du 8 Mai 1945",
    ],
)
def test_french_postal_addresses(scrubber, address: str) -> None:
    assert found(scrubber, f"Elle habite au {address} depuis deux ans.") == [("FR_ADDRESS", address)]


@pytest.mark.parametrize(
    "text",
    [
        "Il a travaillé 3 ans comme agent de quai.",
        "Prévoir 2 rues à traverser.",
        "Formation de 12 semaines en Provence.",
    ],
)
def test_numbers_before_common_words_are_not_addresses(scrubber, text: str) -> None:
    assert "FR_ADDRESS" not in types(scrubber, text)


@pytest.mark.parametrize(
    "date", ["12/03/1985", "1er mars 1985", "12.03.1985", "1985-03-12", "7 juillet 2001"]
)
def test_dates_of_birth_after_a_birth_cue(scrubber, date: str) -> None:
    for cue in ("Née le", "Date de naissance :", "né(e) le", "DDN"):
        assert found(scrubber, f"{cue} {date}, elle cherche un emploi.") == [("DATE_OF_BIRTH", date)]


@pytest.mark.parametrize(
    "text",
    [
        "Rendez-vous le 12/03/2024 à l'agence.",
        "Inscrit depuis le 1er mars 2023.",
        "Née le 02/04/1990, inscrite le 05/06/2023.",
    ],
)
def test_other_dates_are_not_birth_dates(scrubber, text: str) -> None:
    dates = [v for t, v in found(scrubber, text) if t == "DATE_OF_BIRTH"]
    assert dates in ([], ["02/04/1990"])


@pytest.mark.parametrize(
    "text,name",
    [
        ("Entretien avec Mme Julie MARTIN ce matin.", "Julie MARTIN"),
        ("DUPONT Marie a appelé.", "DUPONT Marie"),
        ("Monsieur Karim Benali souhaite se former.", "Karim Benali"),
        ("Le conseiller a reçu Jean-Pierre Lefèvre hier.", "Jean-Pierre Lefèvre"),
    ],
)
def test_person_names(scrubber, text: str, name: str) -> None:
    persons = [v for t, v in found(scrubber, text) if t == "PERSON"]
    assert persons and all(name in p or p in name for p in persons)
    assert any(name in p for p in persons)


@pytest.mark.parametrize(
    "text",
    [
        "Inscrit à France Travail depuis mars.",
        "Demande de SIRET Entreprise en cours.",
        "La Mission Locale de Marseille l'accompagne.",
    ],
)
def test_institutions_are_not_persons(scrubber, text: str) -> None:
    assert "PERSON" not in types(scrubber, text)


def test_scrub_batch_replaces_entities_with_typed_tags_and_keeps_line_count(scrubber) -> None:
    texts = [
        "Mme Julie MARTIN, tél 06 12 34 56 78, julie.martin@gmail.com.",
        "",
        "Rien à signaler.",
        "Né le 01/02/1990 au 4 rue Paradis 13001 Marseille.",
    ]
    out = scrubber.scrub_batch(texts)
    assert len(out) == 4 and out[1] == "" and out[2] == "Rien à signaler."
    assert "<NOM>" in out[0] and "<TELEPHONE>" in out[0] and "<EMAIL>" in out[0]
    assert "MARTIN" not in out[0] and "06 12" not in out[0] and "gmail" not in out[0]
    assert out[3] == "Né le <DATE_NAISSANCE> au <ADRESSE>."


def test_pseudonym_operator_is_stable_within_a_study_only(linkage_key) -> None:
    from anonymization.pseudonyms import Pseudonymizer
    from anonymization.scrubber import FrenchScrubber

    p = Pseudonymizer(linkage_key)
    a = FrenchScrubber(operator="pseudonym", study=p.for_study("A"), with_ner=False)
    text = ["Appeler le 06 12 34 56 78 puis le +33 6 12 34 56 78."]
    out_a = a.scrub_batch(text)[0]
    tags = [w.strip(".") for w in out_a.split() if w.startswith("<TELEPHONE_")]
    assert len(tags) == 2 and tags[0] == tags[1]
    a.study = p.for_study("B")
    assert a.scrub_batch(text)[0] != out_a
