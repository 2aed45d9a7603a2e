"""Grants: a node accepts only a grant signed by the pinned broker key, unexpired, listing its site."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust_broker.grants import (
    DPBounds,
    Grant,
    GrantExpired,
    GrantInvalid,
    GrantSiteNotListed,
    issue_grant,
    verify_grant,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _grant(**changes: object) -> Grant:
    data: dict[str, object] = {
        "study_id": "s-1",
        "purpose": "autodiagnostic_mobilite",
        "policy_digest": "sha256:" + "ab" * 32,
        "task": "employment_outcome",
        "dataset": "parcours",
        "fields": ("age_band", "sex"),
        "sites": ("france_travail", "apec"),
        "epsilon": {"france_travail": 2.0, "apec": 1.5},
        "delta": 1e-8,
        "dp_bounds": DPBounds(min_noise_multiplier=0.5, max_grad_norm_min=0.1, max_grad_norm_max=5.0),
        "rounds": 3,
        "coordinator": "coordinator",
        "issued_at": NOW,
        "expires_at": NOW + dt.timedelta(days=1),
    }
    data.update(changes)
    return Grant.model_validate(data)


@pytest.fixture(scope="module")
def broker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_valid_grant_round_trips_with_every_claim(broker_key: Ed25519PrivateKey) -> None:
    jws = issue_grant(_grant(), broker_key, kid="broker")
    grant = verify_grant(jws, broker_key.public_key(), site="apec", now=NOW)
    assert grant.epsilon_for("apec") == 1.5
    assert grant.dp_bounds.min_noise_multiplier == 0.5
    assert grant.kid == "broker"
    assert grant.expires_at == NOW + dt.timedelta(days=1)


def test_grant_signed_by_another_key_is_refused(broker_key: Ed25519PrivateKey) -> None:
    forged = issue_grant(_grant(), Ed25519PrivateKey.generate(), kid="broker")
    with pytest.raises(GrantInvalid, match="pinned broker key"):
        verify_grant(forged, broker_key.public_key(), site="apec", now=NOW)


def test_grant_with_edited_claims_is_refused(broker_key: Ed25519PrivateKey) -> None:
    header, payload, signature = issue_grant(_grant(), broker_key, kid="broker").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["epsilon"]["apec"] = 50.0
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(GrantInvalid):
        verify_grant(f"{header}.{edited}.{signature}", broker_key.public_key(), site="apec", now=NOW)


def test_grant_with_symmetric_or_no_algorithm_is_refused(broker_key: Ed25519PrivateKey) -> None:
    claims = _grant().to_claims()
    for token in (
        jwt.encode(
            claims,
            "secret-secret-secret-secret-secret",
            algorithm="HS256",
            headers={"typ": "r2dde-grant+jwt"},
        ),
        jwt.encode(claims, None, algorithm="none"),
    ):
        with pytest.raises(GrantInvalid):
            verify_grant(token, broker_key.public_key(), site="apec", now=NOW)


def test_expired_grant_is_refused(broker_key: Ed25519PrivateKey) -> None:
    jws = issue_grant(_grant(), broker_key, kid="broker")
    with pytest.raises(GrantExpired):
        verify_grant(jws, broker_key.public_key(), site="apec", now=NOW + dt.timedelta(days=2))


def test_grant_for_other_sites_is_refused(broker_key: Ed25519PrivateKey) -> None:
    jws = issue_grant(_grant(), broker_key, kid="broker")
    with pytest.raises(GrantSiteNotListed):
        verify_grant(jws, broker_key.public_key(), site="missions_locales", now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", 42])
def test_garbage_is_refused_as_invalid(broker_key: Ed25519PrivateKey, garbage: object) -> None:
    with pytest.raises(GrantInvalid):
        verify_grant(garbage, broker_key.public_key(), site="apec", now=NOW)  # type: ignore[arg-type]
