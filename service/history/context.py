"""The context window: the newest messages of a conversation that fit a model's token budget,
oldest first, optionally headed by the conversation's system messages and a named prompt
(README "The context window").

Everything returned counts against the budget: the prompt, the system messages and the window,
so ``tokens`` never exceeds ``max_tokens``. Messages are never cut: the window ends before the
first (newest-first) message that does not fit, even when that is the newest one (then it is
empty, and ``truncated`` says so). A prompt and system messages that alone exceed the budget are
a 422: no window can hold them.
"""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET

from service.core.errors import Forbidden, InvalidInput, NotFound
from service.core.principal import Principal
from service.core.refs import ConversationRef
from service.core.schemas import MAX_TOKENS, ContextPrompt, MessagePage
from service.core.settings import Settings
from service.core.validation import reject_nul
from service.db.pool import Connection
from service.history.conversations import require, resolve
from service.history.messages import NO_UPPER_BOUND, check_seq_bound
from service.store import context


def _check_budget(
    max_tokens: int | None,
    *,
    limit: int | None,
    after: int | None,
    topic: str | None,
    order: Literal["asc", "desc"],
) -> int:
    if max_tokens is None:
        raise InvalidInput(
            "include_system and prompt shape a context window: give max_tokens", field="max_tokens"
        )
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise InvalidInput(f"max_tokens must be between 1 and {MAX_TOKENS}", field="max_tokens")
    # A window is the newest messages, oldest first: paging options have no meaning in it.
    for field, value in (("limit", limit), ("after", after), ("topic", topic)):
        if value is not None:
            raise InvalidInput(f"{field} does not combine with max_tokens", field=field)
    if order != "asc":
        raise InvalidInput("a context window is listed oldest first", field="order")
    return max_tokens


async def _prompt(conn: Connection, principal: Principal, name: str) -> ContextPrompt:
    """The latest version of the prompt, as the prompts API would give it: to trusted callers."""
    if not principal.trusted:
        raise Forbidden("prompts are read with an API key", field="prompt")
    reject_nul(name, "prompt")
    found = await context.prompt(conn, name=name)
    if found is None:
        raise NotFound(f"prompt {name!r} does not exist", field="prompt")
    return found


async def window(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    *,
    max_tokens: int | None,
    before: int | None,
    include_system: bool,
    prompt: str | None,
    limit: int | None,
    after: int | None,
    topic: str | None,
    order: Literal["asc", "desc"],
    settings: Settings,
) -> MessagePage:
    """The newest messages (below seq ``before``, when given) whose tokens, with the prompt's
    and the system messages' (``include_system``), sum to at most ``max_tokens``: the system
    messages first, then the window, each in seq order. At most settings.max_page messages in
    the window, and no more once they carry settings.max_page_bytes (as history pages). When
    older messages were left out, ``truncated`` is true and ``next_cursor`` (as ``before``)
    pages through them, starting with the newest that did not fit."""
    budget = _check_budget(max_tokens, limit=limit, after=after, topic=topic, order=order)
    check_seq_bound(before, "before")
    head = None if prompt is None else await _prompt(conn, principal, prompt)
    reserved = 0 if head is None else head.tokens
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    rows = await context.window(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        before_seq=NO_UPPER_BOUND if before is None else before,
        max_tokens=budget,
        reserved_tokens=reserved,
        include_system=include_system,
        max_rows=settings.max_page,
        max_bytes=settings.max_page_bytes,
    )
    if not rows:
        await require(conn, conversation_id, scope)
    fixed = reserved + sum(row.message.tokens for row in rows if row.kind == "system")
    if fixed > budget:
        raise InvalidInput(
            f"the prompt and system messages alone take {fixed} tokens, more than max_tokens",
            field="max_tokens",
        )
    items = [row.message for row in rows if row.kind != "left_out"]
    left_out = [row.message for row in rows if row.kind == "left_out"]
    return MessagePage(
        items=items,
        next_cursor=left_out[0].seq + 1 if left_out else None,
        prompt=UNSET if head is None else head,
        tokens=reserved + sum(message.tokens for message in items),
        truncated=bool(left_out),
    )
