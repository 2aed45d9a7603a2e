"""The site's prepared table, kept on the node's own disk for the later messages of its study.

Why: Flower's deployment engine starts a fresh ClientApp process for every message, and each one
prepared the site's table again — pseudonyms, generalization and, when counselors' notes are
granted, the French NLP scrubber (≈ 28 s for 1 500 records on the project's machine). The
prepared table is the same for every message of a study as long as the data and the grant are, so
the first message writes it here and the later ones read it back.

What is kept: the anonymized view (``preparation.anonymized_view``) *before* the legal-basis
filter, so that opt-outs, withdrawn consents and the holdout are applied afresh by every message;
and the counts of the node's report. It holds study and linkage pseudonyms, never identifiers.

The rules:

* **Where, who**: ``<state folder>/prepared-tables/`` (mode 0700), one file per study (0600). Only
  the node reads it; nothing here is ever sent.
* **Key**: (study, task, SHA-256 of the data file, SHA-256 of the signed grant, granted fields).
  A file under another key is stale — the data or the grant changed — and is rebuilt in place.
* **Integrity**: each file is MAC'd (HMAC-SHA256) with a random key kept in the same folder
  (``cache.key``, 0600, made on first use, never leaving the node). A file that does not verify —
  corrupted, truncated, altered, or copied from another node — is deleted and rebuilt.
* **Atomic**: written to a temporary file in the folder, flushed, then renamed over the old one.
* **End of the study**: a study's file is deleted when admission finds its grant revoked or expired
  (``forget_if_over``), and any file whose grant has expired is swept at every store. Public
  benchmark data (no personal identifier) is not cached: its preparation is a file read.

Beside each table, the study's noise calibrations (``calibration``): σ from binary searches over
an RDP accountant cost a fresh process more than reading its table, and are a pure function of
their inputs; MAC'd the same way, deleted with the study's table, swept 30 days after writing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

FOLDER = "prepared-tables"
KEY_FILE = "cache.key"
SUFFIX = ".table"
CALIBRATION = "~calibration-"
#: Calibrations hold no record (sizes and σ only); those of public studies, which have no grant
#: to expire, are swept this long after they were written.
CALIBRATION_KEPT = dt.timedelta(days=30)
#: Bump when the prepared view changes shape: every older file then reads as stale.
FORMAT = 1
#: Admission refusals after which the study cannot come back: its table is deleted.
STUDY_OVER_RULES = frozenset({"grant.revoked", "grant.expired"})
_MAC_BYTES = 32
_HEADER_LENGTH_BYTES = 4

Prepared = tuple[pd.DataFrame, dict[str, object]]


def cache_key(
    *, study_id: str, task: str, data_file: Path, grant: str, fields: tuple[str, ...], linkage_key: bytes
) -> str:
    """What the prepared table depends on, as one digest: a change to any of it is a new table.

    The linkage key is in it because the table holds the pseudonyms opt-outs are matched against:
    after a key rotation, a table of old-key pseudonyms would match no new objection."""
    with data_file.open("rb") as source:
        data_digest = hashlib.file_digest(source, "sha256").hexdigest()
    parts = {
        "format": FORMAT,
        "study": study_id,
        "task": task,
        "data": data_digest,
        "grant": hashlib.sha256(grant.encode()).hexdigest(),
        "fields": list(fields),
        "linkage_key": hashlib.sha256(linkage_key).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class TableCache:
    """The node's prepared tables, one file per study, in the node's own state folder."""

    def __init__(self, state_folder: Path) -> None:
        self.folder = state_folder / FOLDER

    def prepared(
        self, study_id: str, key: str, build: Callable[[], Prepared], *, expires_at: dt.datetime | None
    ) -> Prepared:
        """The study's prepared table under ``key``: read back if a valid file holds it, else built
        by ``build`` and stored (a stale, corrupted or altered file is replaced)."""
        cached = self._read(study_id, key)
        if cached is not None:
            return cached
        frame, counts = build()
        self._write(study_id, key, frame, counts, expires_at)
        self.sweep()
        return frame, counts

    def calibration(
        self, study_id: str, inputs: dict[str, object], compute: Callable[[], dict[str, object]]
    ) -> dict[str, object]:
        """A noise calibration of the study, remembered per exact ``inputs``.

        The searches behind σ (binary searches over an RDP accountant) cost a fresh process more
        than the rest of its study's opening; their result is a pure function of the inputs, so it
        is kept beside the table, MAC'd like it, and recomputed when anything differs or the file
        does not verify. A refusal (``PrivacyPlanError``) is not remembered.
        """
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=repr).encode()).hexdigest()
        path = self.folder / f"{_safe(study_id)}{CALIBRATION}{digest[:32]}.json"
        if path.exists():
            header = self._verified(path)
            if header is not None and header.get("inputs") == digest:
                value = header["value"]
                assert isinstance(value, dict)
                return value
        value = compute()
        header = {"study": study_id, "inputs": digest, "value": value}
        self._store(path, _framed(json.dumps(header).encode(), b""))
        return value

    def forget(self, study_id: str) -> None:
        """Delete the study's prepared table and calibrations (the study is over at this node)."""
        self._path(study_id).unlink(missing_ok=True)
        for path in self.folder.glob(f"{_safe(study_id)}{CALIBRATION}*"):
            path.unlink(missing_ok=True)

    def forget_if_over(self, study_id: str, rule: str) -> None:
        """After a refusal: a revoked or expired grant ends the study here, and its table with it."""
        if rule in STUDY_OVER_RULES:
            self.forget(study_id)

    def sweep(self, now: dt.datetime | None = None) -> None:
        """Delete every file whose grant has expired, and every file that does not verify."""
        if not self.folder.is_dir():
            return
        moment = now or dt.datetime.now(dt.UTC)
        for path in self.folder.glob(f"*{SUFFIX}"):
            header = self._verified(path)
            expiry = header and header.get("expires_at")
            if header is None or (expiry and dt.datetime.fromisoformat(str(expiry)) <= moment):
                path.unlink(missing_ok=True)
        oldest = (moment - CALIBRATION_KEPT).timestamp()
        for path in self.folder.glob(f"*{CALIBRATION}*"):
            if path.stat().st_mtime < oldest:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------ files

    def _path(self, study_id: str) -> Path:
        return self.folder / f"{_safe(study_id)}{SUFFIX}"

    def _ensure_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)  # also when it existed with wider rights (umask, an older node)

    def _mac_key(self) -> bytes:
        """The node-local MAC key: made once (atomically: linked into place, never half-written)."""
        path = self.folder / KEY_FILE
        if not path.exists():
            self._ensure_folder()
            descriptor, tmp = tempfile.mkstemp(dir=self.folder, prefix=".key-")  # created 0600
            try:
                with os.fdopen(descriptor, "wb") as out:
                    out.write(secrets.token_bytes(32))
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):  # another process made it first: theirs is kept
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        return path.read_bytes()

    def _verified(self, path: Path) -> dict[str, object] | None:
        """The file's header with its payload, if its MAC verifies; None otherwise."""
        try:
            blob = path.read_bytes()
            key = self._mac_key()
        except OSError:
            return None
        mac, body = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
        expected = hmac.new(key, body, hashlib.sha256).digest()
        if len(key) != 32 or not hmac.compare_digest(mac, expected):
            return None
        length = int.from_bytes(body[:_HEADER_LENGTH_BYTES], "big")
        header: dict[str, object] = json.loads(body[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + length])
        header["payload"] = body[_HEADER_LENGTH_BYTES + length :]
        return header

    def _read(self, study_id: str, key: str) -> Prepared | None:
        path = self._path(study_id)
        if not path.exists():
            return None
        header = self._verified(path)
        if header is None:
            log.warning("prepared table of study %s rejected (integrity check failed): rebuilt", study_id)
            path.unlink(missing_ok=True)
            return None
        if header.get("key") != key or header.get("study") != study_id:
            log.info("prepared table of study %s is stale (data or grant changed): rebuilt", study_id)
            return None
        payload, counts, text_columns = header["payload"], header["counts"], header["object_columns"]
        assert isinstance(payload, bytes) and isinstance(counts, dict) and isinstance(text_columns, list)
        frame = pd.read_parquet(io.BytesIO(payload))
        for column in text_columns:  # Parquet reads them back as pandas' str
            frame[column] = frame[column].astype(object)
        return frame, counts

    def _write(
        self,
        study_id: str,
        key: str,
        frame: pd.DataFrame,
        counts: dict[str, object],
        expires_at: dt.datetime | None,
    ) -> None:
        header = {
            "study": study_id,
            "key": key,
            "counts": counts,
            "object_columns": [str(c) for c in frame.columns if frame[c].dtype == object],
            "expires_at": expires_at.isoformat() if expires_at is not None else None,
        }
        payload = io.BytesIO()
        frame.to_parquet(payload)
        self._store(
            self._path(study_id), _framed(json.dumps(header, default=str).encode(), payload.getvalue())
        )

    def _store(self, path: Path, body: bytes) -> None:
        """MAC ‖ body, written to a temporary file (0600) in the folder, then renamed into place."""
        mac = hmac.new(self._mac_key(), body, hashlib.sha256).digest()
        self._ensure_folder()
        descriptor, tmp = tempfile.mkstemp(dir=self.folder, prefix=".write-")  # created 0600
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(mac + body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _safe(study_id: str) -> str:
    """The study id as a file name (no ``~``: the separator of calibration files)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", study_id)


def _framed(header: bytes, payload: bytes) -> bytes:
    return len(header).to_bytes(_HEADER_LENGTH_BYTES, "big") + header + payload
