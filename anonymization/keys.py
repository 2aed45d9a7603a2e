"""The node-shared linkage key: loaded from a private file or the environment, never from a default.

The same key is installed at every partner's node (distributed out of band by the trust broker's
operator) so that linkage pseudonyms agree across partners; it is never known to the broker or the
coordinator. Its key id (first 8 hex digits of SHA-256 of the key) goes into every pseudonym, so that a
rotated key yields visibly different pseudonyms instead of silently colliding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from anonymization.errors import LinkageKeyError

KEY_ENV_VAR = "R2DDE_LINKAGE_KEY"
KEY_FILE_ENV_VAR = "R2DDE_LINKAGE_KEY_FILE"
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class LinkageKey:
    """Secret bytes of the linkage key and the public key id derived from them."""

    secret: bytes = field(repr=False)
    source: str = "memory"

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise LinkageKeyError(
                f"linkage key from {self.source} has {len(self.secret)} bytes; at least {MIN_KEY_BYTES} "
                "are required (generate one with: python -c 'import secrets; print(secrets.token_hex(32))')"
            )

    @property
    def key_id(self) -> str:
        """Public identifier of the key (8 hex digits), safe to log and to put in pseudonyms."""
        return hashlib.sha256(self.secret).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"LinkageKey(key_id={self.key_id!r}, source={self.source!r})"


def parse_key_text(text: str, source: str) -> LinkageKey:
    """Decode a key written in hex or base64 (standard or URL-safe)."""
    cleaned = "".join(text.split())
    if not cleaned:
        raise LinkageKeyError(f"linkage key from {source} is empty")
    try:
        return LinkageKey(bytes.fromhex(cleaned), source)
    except ValueError:
        pass
    try:
        padded = cleaned + "=" * (-len(cleaned) % 4)
        decoded = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LinkageKeyError(f"linkage key from {source} is neither hex nor base64") from exc
    return LinkageKey(decoded, source)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LinkageKeyError(
            f"linkage key file {path} is readable or writable by group/others "
            f"(mode {stat.filemode(mode)}); restrict it with: chmod 600 {path}"
        )


def load_linkage_key(path: Path | None = None) -> LinkageKey:
    """Load the linkage key from `path`, else `$R2DDE_LINKAGE_KEY_FILE`, else `$R2DDE_LINKAGE_KEY`.

    A key file must be private to its owner (mode 600 or stricter): a key any local user can read would
    let them recompute every partner's pseudonyms.
    """
    if path is None and os.environ.get(KEY_FILE_ENV_VAR):
        path = Path(os.environ[KEY_FILE_ENV_VAR])
    if path is not None:
        if not path.is_file():
            raise LinkageKeyError(f"linkage key file {path} does not exist or is not a file")
        _check_private(path)
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError as exc:
            raise LinkageKeyError(f"linkage key file {path} is not hex or base64 text") from exc
        return parse_key_text(text, source=str(path))
    value = os.environ.get(KEY_ENV_VAR)
    if value:
        return parse_key_text(value, source=f"${KEY_ENV_VAR}")
    raise LinkageKeyError(
        "no linkage key: pass a key file (mode 600) or set "
        f"${KEY_FILE_ENV_VAR} to its path, or set ${KEY_ENV_VAR} to the key in hex or base64"
    )
