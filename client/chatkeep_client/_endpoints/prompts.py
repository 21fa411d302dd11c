"""Named system prompts, versioned (API keys only): put, get, versions, list, retire."""

from __future__ import annotations

import msgspec

from chatkeep_client._call import Call, Pages, decoder, json_call, no_content, query, segment
from chatkeep_client.models import (
    Metadata,
    PromptPage,
    PromptSummary,
    PromptVersion,
    PromptVersionPage,
)


class _Put(msgspec.Struct):
    content: str
    metadata: Metadata


def _path(name: str) -> str:
    return f"/v1/prompts/{segment(name, 'name')}"


def put(name: str, content: str, *, metadata: Metadata | None = None) -> Call[PromptVersion]:
    """Store a new version; putting what the latest version says returns that version."""
    return json_call("PUT", _path(name), _Put(content, metadata or {}), decoder(PromptVersion))


def get(name: str, *, version: int | None = None) -> Call[PromptVersion]:
    """The latest version, or ``version``."""
    return Call("GET", _path(name), decoder(PromptVersion), params=query(version=version))


def versions(
    name: str, *, limit: int | None = None, before: int | None = None
) -> Call[PromptVersionPage]:
    """A page of versions, newest first; pass ``next_cursor`` as ``before`` for older ones."""
    params = query(limit=limit, before=before)
    return Call("GET", f"{_path(name)}/versions", decoder(PromptVersionPage), params=params)


def iterate_versions(
    name: str, *, page_size: int | None = None
) -> Pages[PromptVersionPage, PromptVersion]:
    def following(previous: PromptVersionPage) -> Call[PromptVersionPage] | None:
        if previous.next_cursor is None:
            return None
        return versions(name, limit=page_size, before=previous.next_cursor)

    return Pages(versions(name, limit=page_size), following, lambda listed: listed.items)


def page(*, limit: int | None = None, after: str | None = None) -> Call[PromptPage]:
    """A page of prompts by name; pass ``next_cursor`` as ``after`` for the next."""
    return Call("GET", "/v1/prompts", decoder(PromptPage), params=query(limit=limit, after=after))


def iterate(*, page_size: int | None = None) -> Pages[PromptPage, PromptSummary]:
    def following(previous: PromptPage) -> Call[PromptPage] | None:
        if previous.next_cursor is None:
            return None
        return page(limit=page_size, after=previous.next_cursor)

    return Pages(page(limit=page_size), following, lambda listed: listed.items)


def retire(name: str) -> Call[None]:
    """No longer listed or readable; its versions are kept."""
    return Call("DELETE", _path(name), no_content, gone_is_done=True)
