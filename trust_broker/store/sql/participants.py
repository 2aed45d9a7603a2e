"""Participants and signature nonces in SQL."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from trust_broker.roles import Role
from trust_broker.store import changes
from trust_broker.store.models import NonceRow, ParticipantRow
from trust_broker.store.records import Participant
from trust_broker.store.repository import ParticipantStore
from trust_broker.store.sql.base import SqlStoreBase

NONCE_SWEEP_EVERY = 500
PARTICIPANT_CACHE_SECONDS = 1.0  # another broker process's key change is seen within this
MAX_PARTICIPANT_CACHE = 1024  # known participants only: an unknown key id is never cached

_NONCES = cast(Table, NonceRow.__table__)
_SWEEP_NONCES = delete(_NONCES).where(_NONCES.c.expires_at < bindparam("now"))


def _participant(row: ParticipantRow) -> Participant:
    return Participant(kid=row.kid, role=Role(row.role), site=row.site, public_key=row.public_key)


class SqlParticipants(SqlStoreBase, ParticipantStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nonce_inserts = 0
        self._participant_cache: dict[str, tuple[float, Participant | None]] = {}
        # Built once: every signed request runs it (values bound per call; many rows, one statement).
        self._remember_nonces = (
            self._dialect_insert(_NONCES).on_conflict_do_nothing().returning(_NONCES.c.kid, _NONCES.c.nonce)
        )

    def register_participant(self, participant: Participant, *, actor: str) -> bool:
        wanted = (participant.role.value, participant.site, participant.public_key)
        with self._sessions.begin() as session:
            row = session.get(ParticipantRow, participant.kid)
            if row is not None and (row.role, row.site, row.public_key) == wanted:
                return False
            if row is None:
                row = ParticipantRow(kid=participant.kid, registered_at=changes.now())
                session.add(row)
            row.role, row.site, row.public_key = wanted
            session.flush()
            self._append(session.connection(), [changes.participant_registered(participant, actor)])
        self._participant_cache.clear()  # a rotated key stops working here at once
        return True

    def participant(self, kid: str) -> Participant | None:
        """Looked up on every request, so served from a cache refreshed every second; a change made by
        this process empties it at once. Unknown key ids are not cached (any request may name one:
        caching them cost ≈ 15 MiB per 2 000 unsigned requests), and the cache is bounded."""
        now = time.monotonic()
        cached = self._participant_cache.get(kid)
        if cached is not None and now - cached[0] < PARTICIPANT_CACHE_SECONDS:
            return cached[1]
        with Session(self._read_engine) as session:
            row = session.get(ParticipantRow, kid)
            participant = None if row is None else _participant(row)
        if participant is None:
            self._participant_cache.pop(kid, None)
            return None
        if len(self._participant_cache) >= MAX_PARTICIPANT_CACHE:
            self._participant_cache.clear()
        self._participant_cache[kid] = (now, participant)
        return participant

    def remove_participant(self, kid: str, *, actor: str) -> bool:
        with self._sessions.begin() as session:
            row = session.get(ParticipantRow, kid, with_for_update=True)
            if row is None:
                return False
            role, site = row.role, row.site
            session.delete(row)
            session.flush()
            self._append(session.connection(), [changes.participant_removed(kid, role, site, actor)])
        self._participant_cache.clear()
        return True

    def participants(self) -> list[Participant]:
        with Session(self._read_engine) as session:
            rows = session.scalars(select(ParticipantRow).order_by(ParticipantRow.kid)).all()
            return [_participant(r) for r in rows]

    async def remember_nonce(self, kid: str, nonce: str, expires_at: dt.datetime) -> bool:
        """Every signed request comes through here: the writer's next group inserts all waiting nonces
        in one statement."""
        item = {"kid": kid, "nonce": nonce, "expires_at": expires_at}
        return bool(await self._nonce_writer.run_batched(self._insert_nonces, item))

    def _insert_nonces(self, connection: Connection, nonces: list[dict[str, Any]]) -> list[bool]:
        """True for each nonce seen for the first time (of a nonce sent twice in one batch, the first)."""
        fresh = {(str(kid), str(nonce)) for kid, nonce in connection.execute(self._remember_nonces, nonces)}
        seen: list[bool] = []
        for item in nonces:
            key = (item["kid"], item["nonce"])
            seen.append(key in fresh)
            fresh.discard(key)
        self._nonce_inserts += len(nonces)
        if self._nonce_inserts >= NONCE_SWEEP_EVERY:
            self._nonce_inserts = 0
            connection.execute(_SWEEP_NONCES, {"now": changes.now()})
        return seen
