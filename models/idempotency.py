"""Idempotency keys: a retried mutation returns its first result and changes nothing. The same
key from the same user in the same practice returns the first result; the same key with other
input is a CONFLICT. Keys belong to a practice: one person working in two practices who sends
the same key and input in each gets two results, never the other practice's.
Checked (`replayed`) and written (`remember`) inside the mutation's own transaction, after its
row lock, so a refused request does not burn its key. A mutation that knows its invoice before
it changes anything does both in one statement (`claim_key`): the key is written first, and a
refusal afterwards rolls it back with the rest."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Insert, Integer, Select, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IdColumn, UTCDateTime, utcnow
from models.errors import DomainError, ErrorCode, validation
from models.scope import Viewer


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("practice_id", "user_id", "operation", "key"),)

    id: Mapped[int] = mapped_column(IdColumn, primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the canonical input: the same key with other input is a CONFLICT.
    request_hash: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


MAX_KEY_LENGTH = 255


def fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    practice_id: int
    user_id: int
    operation: str
    key: str
    request_hash: str


def claim_of(
    viewer: Viewer, operation: str, key: str | None, payload: dict[str, Any]
) -> Claim | None:
    """The viewer's claim on `key` for `operation` in their practice (None without a key)."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise validation(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} characters", "idempotencyKey"
        )
    return Claim(viewer.practice_id, viewer.user_id, operation, key, fingerprint(payload))


def key_of(claim: Claim) -> Select[str, int | None]:
    """The first request's hash and invoice id under the claim's key."""
    return select(IdempotencyKey.request_hash, IdempotencyKey.invoice_id).where(
        IdempotencyKey.practice_id == claim.practice_id,
        IdempotencyKey.user_id == claim.user_id,
        IdempotencyKey.operation == claim.operation,
        IdempotencyKey.key == claim.key,
    )


async def replayed(session: AsyncSession, claim: Claim | None) -> int | None:
    """The invoice id of the first request with this key, or None when the key is new."""
    if claim is None:
        return None
    row = (await session.execute(key_of(claim))).one_or_none()
    if row is None:
        return None
    return first_result(claim, row.request_hash, row.invoice_id)


def first_result(claim: Claim, request_hash: str, invoice_id: int | None) -> int | None:
    """The invoice id of the key's first request, which had `request_hash`: CONFLICT when that
    request had other input."""
    if request_hash != claim.request_hash:
        raise DomainError(
            ErrorCode.CONFLICT,
            "this idempotencyKey was already used with different input",
            "idempotencyKey",
        )
    return invoice_id


_UNIQUE = ["practice_id", "user_id", "operation", "key"]


@functools.cache
def _insert_new_key(dialect: str) -> Insert:
    """INSERT of a key that does nothing when the key is there already (both backends spell
    it ON CONFLICT DO NOTHING), returning the id of a row it wrote; its values are bound at
    execution. Built once per dialect: building it per request cost more than running it."""
    table = IdempotencyKey.metadata.tables[IdempotencyKey.__tablename__]
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_nothing(index_elements=_UNIQUE).returning(table.c.id)


async def claim_key(session: AsyncSession, claim: Claim | None, invoice_id: int) -> int | None:
    """`replayed` and `remember` in one statement for a change of `invoice_id`: None when this
    is the key's first request (the key is now written, in the caller's transaction; also
    without a key), else the invoice id of the first request (CONFLICT for other input).

    A concurrent transaction that wrote the same key first makes the INSERT wait for it (the
    unique index); once it committed, the key is found as a replay, as by `replayed`."""
    if claim is None:
        return None
    dialect = session.get_bind().dialect.name
    values = {
        "practice_id": claim.practice_id,
        "user_id": claim.user_id,
        "operation": claim.operation,
        "key": claim.key,
        "request_hash": claim.request_hash,
        "invoice_id": invoice_id,
        "created_at": utcnow(),
    }
    if (await session.execute(_insert_new_key(dialect), values)).first() is not None:
        return None
    row = (await session.execute(key_of(claim))).one_or_none()
    first = None if row is None else first_result(claim, row.request_hash, row.invoice_id)
    if first is None:  # deleted since, or a key that names no invoice: not ours to replay
        raise DomainError(ErrorCode.CONFLICT, "this idempotencyKey is in use; retry")
    return first


def remember(session: AsyncSession, claim: Claim | None, invoice_id: int) -> None:
    if claim is not None:
        session.add(
            IdempotencyKey(
                practice_id=claim.practice_id,
                user_id=claim.user_id,
                operation=claim.operation,
                key=claim.key,
                request_hash=claim.request_hash,
                invoice_id=invoice_id,
            )
        )
