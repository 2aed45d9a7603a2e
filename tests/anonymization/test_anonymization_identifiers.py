from __future__ import annotations

import random

import pii_factory as f
import pytest

from anonymization.checksums import iban_valid, nir_key, siret_valid
from anonymization.errors import InvalidIdentifierError
from anonymization.identifiers import get_identifier_type


@pytest.mark.parametrize("seed", range(20))
def test_generated_nirs_validate_including_corsica(seed: int) -> None:
    rng = random.Random(seed)
    nir = get_identifier_type("nir")
    value = f.nir(rng, corsica=seed % 2 == 0)
    assert nir.normalize(f.write_nir(value, rng)) == value
    with pytest.raises(InvalidIdentifierError, match="key"):
        nir.normalize(f.wrong_key_nir(rng))


def test_corsica_departments_use_19_and_18_in_the_key() -> None:
    body_2a, body_2b = "18505" + "2A" + "123456", "18505" + "2B" + "123456"
    assert nir_key(body_2a) == 97 - int("18505" + "19" + "123456") % 97
    assert nir_key(body_2b) == 97 - int("18505" + "18" + "123456") % 97


@pytest.mark.parametrize(
    "value", ["", "1850578006084", "3850578006084ab", "985057800608436", "1851378006084xx"]
)
def test_malformed_nirs_are_rejected(value: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        get_identifier_type("nir").normalize(value)


def test_siret_and_siren_luhn_and_la_poste_exception() -> None:
    rng = random.Random(1)
    siret = f.siret(rng)
    assert get_identifier_type("siret").normalize(f.write_siret(siret, rng)) == siret
    assert get_identifier_type("siren").normalize(siret[:9]) == siret[:9]
    with pytest.raises(InvalidIdentifierError, match="Luhn"):
        get_identifier_type("siret").normalize(f.luhn_invalid(siret))
    assert siret_valid("35600000000047")  # La Poste: digit sum multiple of 5, fails Luhn
    assert not siret_valid("35600000000048")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033 4 91 12 34 56", "+33491123456"),
        ("04.91.12.34.56", "+33491123456"),
    ],
)
def test_phones_normalize_to_e164(raw: str, e164: str) -> None:
    assert get_identifier_type("phone").normalize(raw) == e164


@pytest.mark.parametrize("raw", ["12 34", "00 00 00 00 00", "not a phone"])
def test_invalid_phones_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        get_identifier_type("phone").normalize(raw)


def test_emails_and_ft_ids() -> None:
    assert get_identifier_type("email").normalize(" A.B@Orange.FR") == "a.b@orange.fr"
    assert get_identifier_type("ft_id").normalize("1234567 a") == "1234567A"
    for kind, raw in [
        ("email", "a@b"),
        ("email", "@orange.fr"),
        ("ft_id", "123456A"),
        ("ft_id", "12345678AB"),
    ]:
        with pytest.raises(InvalidIdentifierError):
            get_identifier_type(kind).normalize(raw)


def test_generated_ibans_pass_mod_97() -> None:
    rng = random.Random(2)
    for _ in range(20):
        value = f.iban_fr(rng)
        assert iban_valid(value) and not iban_valid(value[:-1] + str((int(value[-1]) + 1) % 10))
