"""Tables of the broker; every write goes through ``SqlBrokerStore`` with its audit event."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ParticipantRow(Base):
    __tablename__ = "participants"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public_key: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class NonceRow(Base):
    """A signature nonce seen once; kept until its signature could no longer be accepted."""

    __tablename__ = "nonces"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class StudyRow(Base):
    __tablename__ = "studies"

    study_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # granted | refused | revoked
    purpose: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(String(128))
    requested_by: Mapped[str] = mapped_column(String(128))
    request_json: Mapped[str] = mapped_column(Text)
    decision_json: Mapped[str] = mapped_column(Text)
    grant_jws: Mapped[str | None] = mapped_column(Text, nullable=True)
    grant_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class BudgetAccountRow(Base):
    """One ledger account per (site, dataset, period); its row is the lock that serializes reserves."""

    __tablename__ = "budget_accounts"
    __table_args__ = (UniqueConstraint("site", "dataset", "period", name="uq_budget_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(128))
    period: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ReservationRow(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("requester", "request_id", name="uq_reservation_request"),
        Index("ix_reservations_account_status", "account_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("budget_accounts.id"))
    requester: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str] = mapped_column(String(128))
    study_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))  # reserved | committed | released | refused
    mechanism_json: Mapped[str] = mapped_column(Text)
    committed_mechanism_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    examples: Mapped[int] = mapped_column(Integer)
    epsilon_after: Mapped[float] = mapped_column(Float)
    cap: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    refusal_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OptOutRow(Base):
    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("linkage_pseudonym", "purpose", name="uq_opt_out"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    linkage_pseudonym: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(128))  # "*" = every purpose
    site: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ConsentRow(Base):
    """Consent given or withdrawn, as an append-only list; the latest entry per pseudonym wins."""

    __tablename__ = "consents"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    linkage_pseudonym: Mapped[str] = mapped_column(String(128), index=True)
    purpose: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # given | withdrawn
    site: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditTipRow(Base):
    """The chain's last event; locked by every appender so the chain never forks."""

    __tablename__ = "audit_tip"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(128))


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    payload_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str] = mapped_column(String(128), unique=True)


class AuditHeadRow(Base):
    """A broker signature over the chain at one event (as made by ``audit.chain.sign_head``)."""

    __tablename__ = "audit_heads"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    jws: Mapped[str] = mapped_column(Text)
