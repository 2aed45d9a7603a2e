from __future__ import annotations

import hashlib
import hmac
import random

import pii_factory as f
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymization.errors import InvalidIdentifierError
from anonymization.identifiers import IDENTIFIER_TYPES
from anonymization.keys import LinkageKey
from anonymization.pseudonyms import Pseudonymizer, domain_tag

keys = st.binary(min_size=32, max_size=48).map(LinkageKey)
values = st.text(min_size=1, max_size=40)
kinds = st.sampled_from(sorted(IDENTIFIER_TYPES))
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(key=keys, kind=kinds, value=values)
def test_same_key_and_domain_give_the_same_pseudonym(key: LinkageKey, kind: str, value: str) -> None:
    assert Pseudonymizer(key).linkage(kind, value) == Pseudonymizer(LinkageKey(key.secret)).linkage(
        kind, value
    )


@SETTINGS
@given(key=keys, kinds_pair=st.lists(kinds, min_size=2, max_size=2, unique=True), value=values)
def test_another_domain_gives_another_pseudonym(key: LinkageKey, kinds_pair: list[str], value: str) -> None:
    p = Pseudonymizer(key)
    assert p.linkage(kinds_pair[0], value) != p.linkage(kinds_pair[1], value)


@SETTINGS
@given(a=keys, b=keys, kind=kinds, value=values)
def test_another_key_gives_another_pseudonym_and_key_id(
    a: LinkageKey, b: LinkageKey, kind: str, value: str
) -> None:
    if a.secret == b.secret:
        return
    pa, pb = Pseudonymizer(a).linkage(kind, value), Pseudonymizer(b).linkage(kind, value)
    assert pa != pb
    assert pa.split(".")[1] == a.key_id and pb.split(".")[1] == b.key_id


@SETTINGS
@given(
    key=keys,
    studies=st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=2, unique=True),
    value=values,
)
def test_another_study_gives_another_study_pseudonym(key: LinkageKey, studies: list[str], value: str) -> None:
    p = Pseudonymizer(key)
    linkage = p.linkage("nir", value)
    s1, s2 = (p.for_study(s).from_linkage(linkage) for s in studies)
    assert s1 != s2
    assert s1 == p.for_study(studies[0]).from_linkage(linkage)
    assert s1.startswith(f"s1.{key.key_id}.") and linkage.startswith(f"p1.{key.key_id}.")


@SETTINGS
@given(key=keys, kind=kinds, value=values)
def test_linkage_pseudonym_is_the_documented_hmac(key: LinkageKey, kind: str, value: str) -> None:
    expected = hmac.new(key.secret, domain_tag(kind) + value.encode(), hashlib.sha256).hexdigest()
    assert Pseudonymizer(key).linkage(kind, value) == f"p1.{key.key_id}.{expected}"
    assert Pseudonymizer(key).linkage_many(kind, [value, value]) == [f"p1.{key.key_id}.{expected}"] * 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_every_way_of_writing_an_identifier_gives_one_pseudonym(seed: int, linkage_key: LinkageKey) -> None:
    rng = random.Random(seed)
    p = Pseudonymizer(linkage_key)
    nir = f.nir(rng, corsica=rng.random() < 0.3)
    assert {p.pseudonymize("nir", f.write_nir(nir, rng)) for _ in range(6)} == {p.pseudonymize("nir", nir)}
    phone = f.mobile(rng)
    assert {p.pseudonymize("phone", f.write_phone(phone, rng)) for _ in range(6)} == {
        p.pseudonymize("phone", phone)
    }
    siret = f.siret(rng)
    assert p.pseudonymize("siret", f.write_siret(siret, rng)) == p.pseudonymize("siret", siret)
    assert p.pseudonymize("email", " Julie.Martin@Gmail.COM ") == p.pseudonymize(
        "email", "julie.martin@gmail.com"
    )


def test_invalid_identifiers_are_counted_and_never_output(linkage_key: LinkageKey) -> None:
    rng = random.Random(3)
    good = [f.nir(rng) for _ in range(5)]
    bad = [f.wrong_key_nir(rng), "12345", "2 85 13 13 055 123 45"]
    column = good[:2] + bad[:1] + [None, "  "] + bad[1:] + good[2:]
    result = Pseudonymizer(linkage_key).pseudonymize_column("nir", column)
    assert result.rejected_rows == [2, 5, 6]
    assert result.empty_rows == [3, 4]
    assert sum(result.rejected_rules.values()) == 3
    assert [p is None for p in result.pseudonyms] == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    joined = " ".join(p for p in result.pseudonyms if p)
    assert not any(v.replace(" ", "") in joined for v in good + bad[:1])


def test_an_invalid_identifier_error_does_not_carry_the_value(linkage_key: LinkageKey) -> None:
    value = f.wrong_key_nir(random.Random(5))
    with pytest.raises(InvalidIdentifierError) as info:
        Pseudonymizer(linkage_key).pseudonymize("nir", value)
    assert value not in str(info.value) and info.value.kind == "nir"
