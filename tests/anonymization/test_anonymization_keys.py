from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from anonymization.errors import LinkageKeyError
from anonymization.keys import KEY_ENV_VAR, KEY_FILE_ENV_VAR, LinkageKey, load_linkage_key


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV_VAR, raising=False)


def write_key(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_private_key_file_loads_with_a_key_id(tmp_path: Path) -> None:
    secret = os.urandom(32)
    key = load_linkage_key(write_key(tmp_path / "k", secret.hex() + "\n", 0o600))
    assert key.secret == secret
    assert len(key.key_id) == 8 and int(key.key_id, 16) >= 0


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = write_key(tmp_path / "linkage.key", os.urandom(32).hex(), mode)
    with pytest.raises(LinkageKeyError) as info:
        load_linkage_key(path)
    assert str(path) in str(info.value)
    assert f"chmod 600 {path}" in str(info.value)


def test_missing_key_names_both_sources() -> None:
    with pytest.raises(LinkageKeyError) as info:
        load_linkage_key()
    assert KEY_ENV_VAR in str(info.value) and KEY_FILE_ENV_VAR in str(info.value)


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LinkageKeyError, match="absent.key"):
        load_linkage_key(tmp_path / "absent.key")


@pytest.mark.parametrize(
    "encode",
    [
        bytes.hex,
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
    ],
)
def test_environment_key_in_hex_or_base64(monkeypatch: pytest.MonkeyPatch, encode) -> None:
    secret = os.urandom(32)
    monkeypatch.setenv(KEY_ENV_VAR, encode(secret))
    assert load_linkage_key().secret == secret


def test_key_file_env_var_is_used_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_key(tmp_path / "k", os.urandom(32).hex(), 0o644)
    monkeypatch.setenv(KEY_FILE_ENV_VAR, str(path))
    with pytest.raises(LinkageKeyError, match="chmod 600"):
        load_linkage_key()


def test_short_or_garbage_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, os.urandom(16).hex())
    with pytest.raises(LinkageKeyError, match="at least 32"):
        load_linkage_key()
    monkeypatch.setenv(KEY_ENV_VAR, "not a key !!")
    with pytest.raises(LinkageKeyError, match="neither hex nor base64"):
        load_linkage_key()


def test_key_repr_never_shows_the_secret() -> None:
    secret = os.urandom(32)
    key = LinkageKey(secret)
    assert secret.hex() not in repr(key) and secret.hex()[:8] not in repr(key).replace(key.key_id, "")
