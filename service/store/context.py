"""Context windows (queries in sql/context.sql): the newest messages of a conversation that fit a
token budget, and the prompt that may head them."""

from __future__ import annotations

from typing import Literal, NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.schemas import ContextPrompt, Message
from service.db.pool import Connection
from service.db.queries import queries

Kind = Literal["system", "window", "left_out"]


class WindowRow(NamedTuple):
    message: Message
    # What the row is (see the query): a system message put first, a message of the window, or
    # the newest message that did not fit.
    kind: Kind


async def prompt(conn: Connection, *, name: str) -> ContextPrompt | None:
    """The latest version of prompt ``name`` with its estimated tokens; None when retired or
    never stored."""
    row = await queries().one(conn, "context.prompt", name=name)
    return ContextPrompt(*row) if row else None


async def window(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    before_seq: int,
    max_tokens: int,
    reserved_tokens: int,
    include_system: bool,
    max_rows: int,
    max_bytes: int,
) -> list[WindowRow]:
    """The conversation's system messages (with ``include_system``) and its newest messages
    below ``before_seq`` within the budget, in seq order, and the newest that did not fit. The
    newest 51 are read in one range scan; beyond them, one probe per message."""
    rows = await queries().many(
        conn,
        "context.window",
        conversation_id=conversation_id,
        before_seq=before_seq,
        max_tokens=max_tokens,
        reserved_tokens=reserved_tokens,
        include_system=include_system,
        max_rows=max_rows,
        max_bytes=max_bytes,
        **scope,
    )
    # The first eleven columns are a Message; the twelfth is the row's kind.
    return [WindowRow(Message(*row[:11]), row[11]) for row in rows]
