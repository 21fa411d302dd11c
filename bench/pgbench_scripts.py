"""pgbench scripts that run the service's own statements, taken from the query registry.

Each ``$n`` of a registered query is replaced by a pgbench expression; with ``-M prepared``
pgbench turns the ``:variables`` back into parameters, so PostgreSQL prepares and runs the same
statement the service sends. Conversation ids are md5('bench-' || n)::uuid (see sql/dataset.sql),
so ``\\set n random(...)`` picks a random one.
"""

from __future__ import annotations

import re
from pathlib import Path

from service.api.messages import NO_LOWER_BOUND, NO_UPPER_BOUND
from service.cursor import START
from service.queries import load_queries
from service.resources import SQL_DIR

RANDOM_CONVERSATION = "md5('bench-' || :n)::uuid"
TRUSTED = {2: "true", 3: "NULL", 4: "NULL"}
PARAMETER = re.compile(r"\$(\d+)")


def statement(key: str, values: dict[int, str]) -> str:
    sql = load_queries(SQL_DIR)[key].sql.rstrip().rstrip(";")
    return PARAMETER.sub(lambda match: values[int(match[1])], sql)


def latest(conversation: str) -> str:
    values = {1: conversation, **TRUSTED, 5: str(NO_LOWER_BOUND), 6: str(NO_UPPER_BOUND), 7: "51"}
    return statement("messages.page_backward", values) + ";\n"


def read_random(conversations: int) -> str:
    return f"\\set n random(1, {conversations})\n" + latest(RANDOM_CONVERSATION)


def read_growing(size: int) -> str:
    return latest(f"md5('grow-{size}')::uuid")


def list_for_user(users: int) -> str:
    updated_at, last_id = START
    values = {
        1: "'user-' || :u",
        2: f"'{updated_at.isoformat()}'::timestamptz",
        3: f"'{last_id}'::uuid",
        4: "21",
    }
    return (
        f"\\set u random(0, {users - 1})\n"
        + statement("conversations.list_recent_for_user", values)
        + ";\n"
    )


def append(conversations: int, count: int) -> str:
    """One append of ``count`` messages, as the service runs it: lock, then one insert."""
    rows = f"FROM generate_series(1, {count}) AS i"
    lock = statement("conversations.lock_for_append", {1: RANDOM_CONVERSATION, **TRUSTED})
    insert = statement(
        "messages.append_batch",
        {
            1: RANDOM_CONVERSATION,
            2: ":last_seq",
            3: f"ARRAY(SELECT gen_random_uuid() {rows})",
            4: f"ARRAY(SELECT CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END {rows})",
            5: f"ARRAY(SELECT repeat('benchmark text ', 26) {rows})",
            6: f"ARRAY(SELECT NULL::text {rows})",
            7: 'ARRAY(SELECT \'{"citations": [{"url": "https://example.com/1"}]}\'::jsonb '
            f"{rows})",
        },
    )
    return f"\\set n random(1, {conversations})\nBEGIN;\n{lock} \\gset\n{insert};\nCOMMIT;\n"


def write(directory: Path, name: str, script: str) -> Path:
    path = directory / f"{name}.sql"
    path.write_text(script)
    return path
