"""pgbench scripts that run the service's own statements, taken from the query registry.

Each ``:name`` parameter of a registered query is replaced by a pgbench expression; with
``-M prepared`` pgbench turns its own ``:variables`` back into parameters, so PostgreSQL
prepares and runs the same statement the service sends. Conversation ids are
md5('bench-' || n)::uuid (see sql/dataset.sql), so ``\\set n random(...)`` picks a random one.
"""

from __future__ import annotations

from pathlib import Path

from service.core.cursor import START
from service.core.settings import Settings
from service.db.queries import load_queries, substitute_parameters
from service.db.resources import SQL_DIR
from service.history.messages import NO_LOWER_BOUND, NO_UPPER_BOUND

RANDOM_CONVERSATION = "md5('bench-' || :n)::uuid"
TRUSTED = {"caller_trusted": "true", "caller_user_id": "NULL", "caller_visitor_hash": "NULL"}


def statement(key: str, values: dict[str, str]) -> str:
    query = load_queries(SQL_DIR)[key]
    text = substitute_parameters(query.text, values.__getitem__, query.source)
    return text.rstrip().rstrip(";")


def latest(conversation: str) -> str:
    values = {
        "conversation_id": conversation,
        **TRUSTED,
        "after_seq": str(NO_LOWER_BOUND),
        "before_seq": str(NO_UPPER_BOUND),
        "max_rows": "51",
        "max_bytes": str(Settings().max_page_bytes),
    }
    return statement("messages.page_backward", values) + ";\n"


def read_random(conversations: int) -> str:
    return f"\\set n random(1, {conversations})\n" + latest(RANDOM_CONVERSATION)


def read_growing(size: int) -> str:
    return latest(f"md5('grow-{size}')::uuid")


# The data set's messages are 400 ASCII bytes, 100 tokens by the estimate: this budget holds the
# latest 50, the page size the other reads use.
WINDOW_TOKENS = 5000


def window(conversation: str, max_tokens: int = WINDOW_TOKENS) -> str:
    """The context window statement as GET ...?max_tokens= runs it (no prompt, no system)."""
    settings = Settings()
    values = {
        "conversation_id": conversation,
        **TRUSTED,
        "before_seq": str(NO_UPPER_BOUND),
        "max_tokens": str(max_tokens),
        "reserved_tokens": "0",
        "include_system": "false",
        "max_rows": str(settings.max_page),
        "max_bytes": str(settings.max_page_bytes),
    }
    return statement("context.window", values) + ";\n"


def window_growing(size: int) -> str:
    return window(f"md5('grow-{size}')::uuid")


def list_for_user(users: int) -> str:
    updated_at, last_id = START
    values = {
        "user_id": "'user-' || :u",
        "metadata": "NULL",
        "after_at": f"'{updated_at.isoformat()}'::timestamptz",
        "after_id": f"'{last_id}'::uuid",
        "max_rows": "21",
    }
    return (
        f"\\set u random(0, {users - 1})\n"
        + statement("conversation_lists.for_user_by_updated", values)
        + ";\n"
    )


def append(conversations: int, count: int) -> str:
    """One append of ``count`` messages, as the service runs it: lock, then one insert."""
    rows = f"FROM generate_series(1, {count}) AS i"
    lock = statement(
        "conversations.lock_for_append", {"conversation_id": RANDOM_CONVERSATION, **TRUSTED}
    )
    insert = statement(
        "messages.append_batch",
        {
            "conversation_id": RANDOM_CONVERSATION,
            "last_seq": ":last_seq",
            "ids": f"ARRAY(SELECT gen_random_uuid() {rows})",
            "roles": f"ARRAY(SELECT CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END {rows})",
            "contents": f"ARRAY(SELECT repeat('benchmark text ', 26) {rows})",
            "topics": f"ARRAY(SELECT NULL::text {rows})",
            "metadata": 'ARRAY(SELECT \'{"citations": [{"url": "https://example.com/1"}]}\'::jsonb '
            f"{rows})",
            "external_ids": f"ARRAY(SELECT NULL::text {rows})",
            "statuses": f"ARRAY(SELECT 'complete'::text {rows})",
            # Null: estimated by the insert trigger, as for an append that gives no counts.
            "tokens": f"ARRAY(SELECT NULL::integer {rows})",
        },
    )
    return f"\\set n random(1, {conversations})\nBEGIN;\n{lock} \\gset\n{insert};\nCOMMIT;\n"


def turn(conversations: int) -> str:
    """A turn's statements (bench/turns.py): the 2-message append's transaction, then the
    latest 50 of the same conversation."""
    return append(conversations, 2) + latest(RANDOM_CONVERSATION)


def write(directory: Path, name: str, script: str) -> Path:
    path = directory / f"{name}.sql"
    path.write_text(script)
    return path
