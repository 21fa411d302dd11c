"""Conversations from a directory of JSON files, one conversation per file, as file-based chat
stores keep them; prompt files and per-conversation attachments beside them.

    DIR/<name>.json      {"id"?, "title"?, "user_id"?, "created_at"?, "updated_at"?,
                          "messages" | "chat_history" | "history": [{"role", "content", ...}]}
                         (or just the list of messages)
    DIR/<name>/          files attached to that conversation (any depth); or where the
                         layouts say (attachment_layout.py: --layout 'filled/{conversation}.pdf')
    DIR/prompts/*.txt|md system prompts, named after the file

Everything is read through a SourceTree: links and special files are reported, never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from service.transfer.assemble import SourceConversation, SourceMessage
from service.transfer.cleaning import Cleaner
from service.transfer.source_tree import SourceTree, Unreadable

MESSAGE_LISTS = ("messages", "chat_history", "history")
CONVERSATION_FIELDS = {
    "id": ("id", "conversation_id", "session_id", "chat_id"),
    "title": ("title", "name"),
    "user_id": ("user_id", "user"),
    "created_at": ("created_at", "created"),
    "updated_at": ("updated_at", "updated"),
    "metadata": ("metadata",),
}
MESSAGE_FIELDS = {
    "id": ("id", "message_id"),
    "role": ("role", "type", "sender"),
    "content": ("content", "text"),
    "topic": ("topic",),
    "created_at": ("created_at", "timestamp", "time"),
    "metadata": ("metadata",),
}
PROMPTS_DIR = "prompts"
PROMPT_SUFFIXES = (".txt", ".md")


def conversation_files(tree: SourceTree) -> list[Path]:
    return list(tree.files(tree.root, recursive=False, wanted=lambda name: name.endswith(".json")))


def _take(obj: dict[str, Any], names: tuple[str, ...]) -> object:
    """The first of ``names`` present, removed from ``obj`` (what remains goes to metadata)."""
    for name in names:
        if name in obj:
            return obj.pop(name)
    return None


def _with_rest(metadata: object, rest: dict[str, Any]) -> object:
    """Every field chatkeep has no column for is kept in metadata, so nothing is lost."""
    if not rest:
        return metadata
    if metadata is None:
        return rest
    if isinstance(metadata, dict):
        return {
            **{f"_source_{key}" if key in metadata else key: v for key, v in rest.items()},
            **metadata,
        }
    return {"_metadata": metadata, **rest}


def read_file(tree: SourceTree, path: Path, cleaner: Cleaner) -> SourceConversation | None:
    """The file's conversation, or None (reported) when it holds none."""
    try:
        raw = tree.read_bytes(path)
    except Unreadable as exc:
        tree.refuse(path, exc.reason)
        return None
    text = cleaner.text(raw, str(path), "file") or ""
    try:
        document = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        cleaner.report.problem(str(path), f"not JSON: {exc}", "skipped")
        return None
    if isinstance(document, list):
        document = {"messages": document}
    if not isinstance(document, dict):
        cleaner.report.problem(str(path), "neither an object nor a list of messages", "skipped")
        return None
    found = next((name for name in MESSAGE_LISTS if name in document), None)
    listed = document.pop(found) if found else []
    if not isinstance(listed, list):
        cleaner.report.problem(str(path), f"{found} is not a list", "skipped")
        return None
    fields = {name: _take(document, names) for name, names in CONVERSATION_FIELDS.items()}
    messages = [_message(f"{path}:{found}[{n}]", item, cleaner) for n, item in enumerate(listed)]
    return SourceConversation(
        location=str(path),
        id=fields["id"],
        name=path.stem,
        title=fields["title"],
        user_id=fields["user_id"],
        metadata=_with_rest(fields["metadata"], document),
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        messages=[message for message in messages if message is not None],
    )


def _message(location: str, item: object, cleaner: Cleaner) -> SourceMessage | None:
    if not isinstance(item, dict):
        cleaner.report.problem(location, "a message must be an object", "skipped")
        return None
    fields = {name: _take(item, names) for name, names in MESSAGE_FIELDS.items()}
    content = fields["content"]
    if content is not None and not isinstance(content, str):
        # Structured content (e.g. a list of parts): stored as its JSON text, kept exactly.
        content = msgspec.json.encode(content).decode()
    return SourceMessage(
        location=location,
        role=fields["role"],
        content=content,
        id=fields["id"],
        topic=fields["topic"],
        metadata=_with_rest(fields["metadata"], item),
        created_at=fields["created_at"],
    )


def conversation_names(
    conversation_file: Path, source: SourceConversation, conversation_id: UUID
) -> list[str]:
    """The names an attachment layout may know the conversation by: its file's name without
    .json, its source id, its chatkeep id."""
    names = [conversation_file.stem]
    if isinstance(source.id, str | int) and not isinstance(source.id, bool):
        names.append(str(source.id))
    names.append(str(conversation_id))
    return names


def prompt_files(tree: SourceTree) -> list[Path]:
    folder = tree.root / PROMPTS_DIR
    if not tree.directory(folder):
        return []
    return list(
        tree.files(
            folder, recursive=False, wanted=lambda name: Path(name).suffix in PROMPT_SUFFIXES
        )
    )
