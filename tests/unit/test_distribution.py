"""Sharding readiness (docs/SCALING.md, "Sharding with Citus"): every hot query already pins the
distribution key of each distributed table it touches to a parameter, so Citus could route it
to one shard; the queries that span shards are listed, each with why, so a new query has to be
classified here before it can be merged.

This reads the registry's SQL (sql/*.sql); Citus itself is not installed here, so whether its
planner routes each query to one shard is not verified (docs/SCALING.md says what was).
"""

from __future__ import annotations

import re

import pytest

from service.db.queries import Query, load_queries
from service.db.resources import SQL_DIR

REGISTRY = load_queries(SQL_DIR)

# Distributed tables: (distribution column, the parameter that pins it). The conversation's
# tables are co-located (one shard holds a conversation, its messages, files and events);
# blob_chunks are distributed by their blob, owner_usage by its owner.
DISTRIBUTED = {
    "conversations": ("id", "conversation_id"),
    "messages": ("conversation_id", "conversation_id"),
    "files": ("conversation_id", "conversation_id"),
    "conversation_events": ("conversation_id", "conversation_id"),
    "blob_chunks": ("blob_id", "blob_id"),
    "owner_usage": ("owner", "owner"),
}
# The tables whose shards are co-located: a join of two of them on their distribution columns
# stays on one shard, so pinning one pins the other (PostgreSQL carries the equality over).
CO_LOCATED = {"conversations", "messages", "files", "conversation_events"}
# Reference tables: small, read-mostly, a copy on every node, so any shard can join them.
REFERENCE = {"blobs", "api_keys", "accounts", "prompts", "prompt_versions"}

# The hot path: what a chat application does on every turn. Each must stay on one shard.
HOT = {
    # Message pages and the context window.
    "messages.page_backward",
    "messages.page_forward",
    "messages.topic_page_backward",
    "messages.topic_page_forward",
    "context.window",
    # Append: create on first use, lock, find a retry's stored messages, insert.
    "conversations.create_if_missing",
    "conversations.lock_for_append",
    "messages.find_stored",
    "messages.append_batch",
    # Get, update, delete.
    "messages.get",
    "messages.update",
    "messages.delete",
    "messages.clear",
    "events.append_content",
    "conversations.get",
    "conversations.exists",
    "conversations.version",
    "conversations.revision",
    "conversations.update",
    "conversations.delete",
    "conversations.insert",
    # Files: reads, metadata, upload, delete.
    "files.get",
    "files.list",
    "files.set_metadata",
    "files.upload_target",
    "files.lock_conversation",
    "files.conversation_bytes",
    "files.insert",
    "files.delete",
    "files.read_chunks",
    "files.write_chunk",
    # Live updates: a stream's position and what a worker reads per notification.
    "events.position",
    "events.after",
    "events.owned_conversation",
}

# On the hot path, but not on one shard as written: what changes when sharding (SCALING.md).
TO_CHANGE = {
    "usage.of_conversation": "joins owner_usage (distributed by owner) on the conversation's "
    "owner: two single-shard reads instead, the conversation's owner then the owner's usage",
}

# Queries that span shards by design, and why that is acceptable.
FAN_OUT = {
    "conversations.find_by_external_id": "an external id names no shard: ext:{id} addressing "
    "fans out (a lookup table keyed by (owner, external_id) would pin it)",
    "conversations.get_by_external_id_of_owner": "the create-with-external-id conflict check, "
    "by owner: fans out (same lookup table)",
    "conversations.claim": "moves a visitor's conversations to a user: fans out to the shards "
    "holding them, one distributed transaction; rare (a sign-up)",
    "conversations.erase_user": "erases a user's conversations wherever they are: fans out",
    "conversation_lists.by_updated": "a trusted caller's listing of everything: merge of the "
    "shards' top N (Citus pushes ORDER BY ... LIMIT down)",
    "conversation_lists.by_created": "as by_updated",
    "conversation_lists.matching_by_updated": "as by_updated, with each shard's GIN index",
    "conversation_lists.matching_by_created": "as by_updated, with each shard's GIN index",
    "conversation_lists.for_user_by_updated": "a user's conversations live on many shards: each "
    "shard's top N by its user index, merged",
    "conversation_lists.for_user_by_created": "as for_user_by_updated",
    "conversation_lists.for_visitor_by_updated": "as for_user_by_updated",
    "conversation_lists.for_visitor_by_created": "as for_user_by_updated",
    "conversation_lists.count": "a sum of the shards' counts",
    "conversation_lists.count_matching": "a sum of the shards' counts",
    "conversation_lists.count_for_user": "a sum of the shards' counts",
    "conversation_lists.count_for_visitor": "a sum of the shards' counts",
    "conversation_lists.erase_batch": "bulk delete and the prune: each batch runs on every "
    "shard (Citus runs the DELETE ... USING batch per shard when the batch is co-located)",
    "search.messages": "a search of a user's conversations spans the shards holding them "
    "(each shard's trigram and text indexes, merged by rank); with conversation_id it is one "
    "shard",
    "retention.prunable": "the operator's dry run: counts on every shard",
    "transfer.existing_conversations": "an import's batch of ids: one shard each, in one "
    "multi-shard query",
    "transfer.taken_external_ids": "an import's external-id check: fans out",
    "transfer.checksums": "an import's verification of a batch of conversations",
    "transfer.export_conversations": "an export walks everything (or a user's conversations)",
}

# Statements that pin a distributed table's key but are not on the hot path (operator tools).
COLD_SINGLE_SHARD = {
    "transfer.export_messages",
    "transfer.export_files",
    "transfer.export_chunks",
    "transfer.restore_file",
}

# What a query may touch without being on a distributed table: reference tables, the
# catalog, or nothing (locks, settings, pings).
KEYWORDS = (
    r"(?!(?:where|on|set|using|join|left|cross|order|group|limit|returning|for|values|select|"
    r"with|of|lateral)\b)"
)
TABLE_REFERENCE = re.compile(
    rf"\b(?:FROM|JOIN|UPDATE|INTO)\s+{KEYWORDS}(?P<table>[a-z_]+)\b"
    rf"(?:\s+(?:AS\s+)?(?P<alias>{KEYWORDS}[a-z_]+))?",
    re.IGNORECASE,
)
COMMENT = re.compile(r"--[^\n]*")


def sql_of(query: Query) -> str:
    """The query's text without its comments."""
    return COMMENT.sub("", query.text)


def distributed_references(text: str) -> list[tuple[str, str | None]]:
    """(table, alias) of each reference to a distributed table in ``text``, in order."""
    return [
        (match["table"], match["alias"])
        for match in TABLE_REFERENCE.finditer(text)
        if match["table"] in DISTRIBUTED
    ]


def pins(text: str, table: str, alias: str | None, pinned: dict[str, str]) -> int:
    """How many predicates of the query set ``table``'s distribution column, through
    ``alias`` (or unqualified), equal to its parameter, or to the distribution column of a
    co-located table's alias in ``pinned`` (alias: table); an INSERT's column list with the
    parameter among its values counts as one."""
    column, parameter = DISTRIBUTED[table]
    qualified = rf"(?<![\w.]){re.escape(alias)}\.{column}" if alias else rf"(?<![\w.]){column}"
    equal = rf"{qualified}\s*=\s*:{parameter}\b|:{parameter}\s*=\s*{qualified}(?!\w)"
    count = len(re.findall(equal, text))
    if alias and table in CO_LOCATED:
        joined = rf"{qualified}\s*=\s*(\w+)\.(\w+)|(\w+)\.(\w+)\s*=\s*{qualified}(?!\w)"
        for match in re.finditer(joined, text):
            other, other_column = match[1] or match[3], match[2] or match[4]
            other_table = pinned.get(other)
            if other_table in CO_LOCATED and DISTRIBUTED[other_table][0] == other_column:
                count += 1
    inserts = re.findall(rf"\bINTO\s+{table}\b[^(]*\(([^)]*)\)", text, re.IGNORECASE)
    count += sum(
        1
        for columns in inserts
        if column in (c.strip() for c in columns.split(",")) and f":{parameter}" in text
    )
    return count


def unpinned(text: str) -> list[str]:
    """The references to distributed tables in ``text`` that no predicate of their own pins:
    each alias needs as many pinning predicates as it has references."""
    references = distributed_references(text)
    pinned: dict[str, str] = {}
    while True:  # until no more aliases are pinned, directly or through a join
        found = {
            alias: table
            for table, alias in set(references)
            if alias and pins(text, table, alias, pinned) >= references.count((table, alias))
        }
        if found == pinned:
            break
        pinned = found
    return sorted(
        f"{table} {alias or ''}".strip()
        for table, alias in set(references)
        if pins(text, table, alias, pinned) < references.count((table, alias))
    )


def test_the_analysis_sees_what_a_query_touches() -> None:
    """The checker itself, on what it must accept and refuse."""
    for text, expected in (
        ("SELECT 1 FROM messages m WHERE m.conversation_id = :conversation_id", []),
        ("SELECT 1 FROM messages m WHERE m.seq = :conversation_id", ["messages m"]),
        ("SELECT 1 FROM messages WHERE conversation_id = :conversation_id", []),
        (
            "SELECT 1 FROM messages m JOIN files f ON f.conversation_id = m.seq "
            "WHERE m.conversation_id = :conversation_id",
            ["files f"],
        ),
        (
            "SELECT 1 FROM messages m JOIN files f ON f.conversation_id = m.conversation_id "
            "WHERE m.conversation_id = :conversation_id",
            [],
        ),
        (
            "SELECT 1 FROM messages m JOIN files f ON f.conversation_id = m.conversation_id",
            ["files f", "messages m"],
        ),
        (
            "WITH a AS (SELECT 1 FROM messages m WHERE m.conversation_id = :conversation_id) "
            "UPDATE messages m SET seq = 1 FROM a",
            ["messages m"],
        ),
        ("INSERT INTO messages (conversation_id, seq) VALUES (:conversation_id, 1)", []),
        ("INSERT INTO messages (seq) VALUES (1)", ["messages"]),
    ):
        assert unpinned(text) == expected, text


def test_every_query_is_classified() -> None:
    classes = [HOT, set(TO_CHANGE), set(FAN_OUT), COLD_SINGLE_SHARD]
    classified = set().union(*classes)
    assert sum(len(c) for c in classes) == len(classified), "a query is in two classes"
    assert classified <= set(REGISTRY), sorted(classified - set(REGISTRY))
    unclassified = sorted(
        key
        for key in REGISTRY
        if key not in classified and distributed_references(sql_of(REGISTRY[key]))
    )
    assert unclassified == [], (
        f"{unclassified}: classify each in tests/unit/test_distribution.py (HOT if it is on one "
        "shard, FAN_OUT with why if it spans shards) and in docs/SCALING.md"
    )


@pytest.mark.parametrize("key", sorted(HOT | COLD_SINGLE_SHARD))
def test_single_shard_queries_pin_the_distribution_key(key: str) -> None:
    missing = unpinned(sql_of(REGISTRY[key]))
    assert missing == [], f"{key} does not pin {missing} to its parameter"


@pytest.mark.parametrize("key", sorted(TO_CHANGE))
def test_the_queries_to_change_still_need_it(key: str) -> None:
    """When one of them is rewritten to stay on one shard, move it to HOT."""
    assert unpinned(sql_of(REGISTRY[key])) != [], f"{key} is on one shard now: move it to HOT"


@pytest.mark.parametrize("key", sorted(FAN_OUT))
def test_fan_out_queries_do_touch_distributed_tables(key: str) -> None:
    assert distributed_references(sql_of(REGISTRY[key])), f"{key} touches no distributed table"


def test_the_rest_touch_only_reference_tables() -> None:
    tables = {
        match["table"]
        for key, query in REGISTRY.items()
        if not distributed_references(sql_of(query))
        for match in TABLE_REFERENCE.finditer(sql_of(query))
    }
    # unnest(...) and CTE names also follow FROM/JOIN; none is a table of its own.
    ctes = {"old", "updated", "inserted", "deleted", "batch", "locked", "erased", "page", "hits"}
    assert tables - REFERENCE - ctes <= {"_yoyo_migration", "unnest"}, sorted(tables)
