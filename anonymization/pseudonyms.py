"""Keyed, domain-separated, versioned pseudonyms.

linkage pseudonym = "p1.<key id>.<hex HMAC-SHA256(linkage key, "r2dde:<type>" 0x00 ‖ normalized value)>"
study pseudonym   = "s1.<key id>.<hex HMAC-SHA256(study key, linkage pseudonym)>",
                    study key = HKDF-SHA256(linkage key, salt="r2dde-study-v1", info=study id)

Linkage pseudonyms are equal across partners (same key) so opt-outs and record linkage work; study
pseudonyms differ per study so two studies' outputs cannot be joined, even by the broker, which only
ever sees linkage pseudonyms. HMAC objects are keyed once and copied per record: that skips the two
key-pad compressions of a fresh `hmac.new` and is what makes a million pseudonyms a second possible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anonymization.errors import InvalidIdentifierError
from anonymization.identifiers import get_identifier_type
from anonymization.keys import LinkageKey

LINKAGE_VERSION = "p1"
STUDY_VERSION = "s1"
STUDY_KDF_SALT = b"r2dde-study-v1"


def domain_tag(kind: str) -> bytes:
    """HMAC domain prefix of an identifier type; the NUL byte cannot occur in a normalized value."""
    return b"r2dde:" + kind.encode("ascii") + b"\x00"


def _keyed(secret: bytes, prefix: bytes = b"") -> HMAC:
    mac = HMAC(secret, hashes.SHA256())
    if prefix:
        mac.update(prefix)
    return mac


@dataclass
class ColumnPseudonyms:
    """Pseudonyms of one column: None where the value was empty or rejected."""

    pseudonyms: list[str | None]
    rejected_rows: list[int] = field(default_factory=list)
    rejected_rules: dict[str, int] = field(default_factory=dict)
    empty_rows: list[int] = field(default_factory=list)


class Pseudonymizer:
    """Linkage pseudonyms under one linkage key, one pre-keyed HMAC per identifier type."""

    def __init__(self, key: LinkageKey) -> None:
        self._key = key
        self.key_id = key.key_id
        self._prefix = f"{LINKAGE_VERSION}.{self.key_id}."
        self._macs: dict[str, HMAC] = {}

    def _mac(self, kind: str) -> HMAC:
        mac = self._macs.get(kind)
        if mac is None:
            mac = self._macs[kind] = _keyed(self._key.secret, domain_tag(kind))
        return mac

    def linkage(self, kind: str, normalized: str) -> str:
        """Linkage pseudonym of an already normalized value of identifier type `kind`."""
        mac = self._mac(kind).copy()
        mac.update(normalized.encode("utf-8"))
        return self._prefix + mac.finalize().hex()

    def linkage_many(self, kind: str, normalized: Iterable[str]) -> list[str]:
        """Linkage pseudonyms of many normalized values (the hot loop: C-level map, no attribute lookups)."""
        copy = self._mac(kind).copy

        def digest(value: str) -> bytes:
            mac = copy()
            mac.update(value.encode())
            return mac.finalize()

        prefix = self._prefix
        return [prefix + h for h in map(bytes.hex, map(digest, normalized))]

    def pseudonymize(self, kind: str, raw: str) -> str:
        """Normalize then pseudonymize one raw identifier; InvalidIdentifierError if it is invalid."""
        return self.linkage(kind, get_identifier_type(kind).normalize(raw))

    def pseudonymize_column(self, kind: str, values: Sequence[object]) -> ColumnPseudonyms:
        """Pseudonymize a column of raw values, counting empty and rejected rows (0-based positions)."""
        identifier = get_identifier_type(kind)
        normalized: list[str] = []
        positions: list[int] = []
        result = ColumnPseudonyms(pseudonyms=[None] * len(values))
        for position, raw in enumerate(values):
            if raw is None or (isinstance(raw, float) and raw != raw):
                result.empty_rows.append(position)
                continue
            text = str(raw)
            if not text.strip():
                result.empty_rows.append(position)
                continue
            try:
                normalized.append(identifier.normalize(text))
            except InvalidIdentifierError as exc:
                result.rejected_rows.append(position)
                result.rejected_rules[exc.rule] = result.rejected_rules.get(exc.rule, 0) + 1
                continue
            positions.append(position)
        for position, pseudonym in zip(positions, self.linkage_many(kind, normalized), strict=True):
            result.pseudonyms[position] = pseudonym
        return result

    def for_study(self, study_id: str) -> StudyPseudonymizer:
        """The study-scoped pseudonymizer of `study_id`."""
        return StudyPseudonymizer(self._key, study_id)


class StudyPseudonymizer:
    """Study pseudonyms: a keyed function of the linkage pseudonym under a per-study derived key."""

    def __init__(self, key: LinkageKey, study_id: str) -> None:
        if not study_id:
            raise ValueError("a study id is required to derive study pseudonyms")
        self.study_id = study_id
        self.key_id = key.key_id
        study_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=STUDY_KDF_SALT, info=study_id.encode("utf-8")
        ).derive(key.secret)
        self._mac = _keyed(study_key)
        self._prefix = f"{STUDY_VERSION}.{self.key_id}."

    def from_linkage(self, linkage_pseudonym: str) -> str:
        """Study pseudonym of one linkage pseudonym."""
        mac = self._mac.copy()
        mac.update(linkage_pseudonym.encode("ascii"))
        return self._prefix + mac.finalize().hex()

    def from_linkage_many(self, linkage_pseudonyms: Iterable[str | None]) -> list[str | None]:
        """Study pseudonyms of many linkage pseudonyms; None stays None."""
        copy = self._mac.copy
        prefix = self._prefix

        def one(value: str | None) -> str | None:
            if value is None:
                return None
            mac = copy()
            mac.update(value.encode())
            return prefix + mac.finalize().hex()

        return list(map(one, linkage_pseudonyms))

    def text_tag(self, kind: str, normalized: str, length: int = 12) -> str:
        """Short keyed tag for an entity found in free text, stable within the study only."""
        mac = self._mac.copy()
        mac.update(b"text:" + kind.encode("ascii") + b"\x00" + normalized.encode("utf-8"))
        return mac.finalize().hex()[:length]
