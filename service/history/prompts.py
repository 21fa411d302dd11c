"""Named system prompts, versioned: put, read (latest or one version), versions, list, retire.

Prompts are the deployment's configuration, shared by all conversations, so only trusted
callers (API keys, the service's own tools) use them; user tokens and visitors are Forbidden.
"""

from __future__ import annotations

from service.core.errors import Forbidden, NotFound
from service.core.principal import Principal
from service.core.schemas import PromptPage, PromptPut, PromptVersion, PromptVersionPage, same_json
from service.core.settings import Settings
from service.core.validation import check_content, check_metadata, page_size
from service.db.pool import Connection
from service.store import prompts

# Above any version number (versions are integers).
NO_VERSION_BOUND = 2**31 - 1


def _require_trusted(principal: Principal) -> None:
    if not principal.trusted:
        raise Forbidden("prompts are managed with an API key", field="Authorization")


def _prompt_not_found(name: str, version: int | None = None) -> NotFound:
    what = f"prompt {name!r}" if version is None else f"version {version} of prompt {name!r}"
    return NotFound(f"{what} does not exist", field="version" if version else "name")


def check(body: PromptPut, settings: Settings) -> None:
    """What a prompt version must be to be stored (the limits of message content)."""
    check_content(body.content, "content", settings)
    check_metadata(body.metadata, "metadata", settings)


async def put(
    conn: Connection, principal: Principal, name: str, body: PromptPut, settings: Settings
) -> tuple[PromptVersion, bool]:
    """(the version, whether it is new). Putting what the latest version already says returns
    that version, so a retried PUT adds nothing; a retired prompt comes back."""
    _require_trusted(principal)
    check(body, settings)
    async with conn.transaction():
        # Concurrent PUTs of one name go one after the other, the first of a new prompt too, so
        # a retry racing its original sees the version it stored.
        await prompts.lock_name(conn, name=name)
        latest = await prompts.lock_latest(conn, name=name)
        if latest is not None:
            current, retired = latest
            if (
                not retired
                and current.content == body.content
                and same_json(current.metadata, body.metadata)
            ):
                return current, False
        version = await prompts.add_version(
            conn, name=name, content=body.content, metadata=body.metadata
        )
    return version, True


async def get(
    conn: Connection, principal: Principal, name: str, version: int | None
) -> PromptVersion:
    """The latest version, or ``version``."""
    _require_trusted(principal)
    found = await prompts.get(conn, name=name, version=version)
    if found is None:
        raise _prompt_not_found(name, version)
    return found


async def versions_page(
    conn: Connection,
    principal: Principal,
    name: str,
    *,
    limit: int | None,
    before: int | None,
    settings: Settings,
) -> PromptVersionPage:
    """Versions newest first, below ``before`` (a previous page's next_cursor)."""
    _require_trusted(principal)
    size = page_size(limit, settings)
    rows = await prompts.versions(
        conn, name=name, before=before or NO_VERSION_BOUND, limit=size + 1
    )
    if not rows and await prompts.get(conn, name=name, version=None) is None:
        raise _prompt_not_found(name)
    items = rows[:size]
    return PromptVersionPage(
        items=items, next_cursor=items[-1].version if len(rows) > size else None
    )


async def list_page(
    conn: Connection,
    principal: Principal,
    *,
    limit: int | None,
    after: str | None,
    settings: Settings,
) -> PromptPage:
    """Prompts in use, by name, after the name ``after`` (a previous page's next_cursor)."""
    _require_trusted(principal)
    size = page_size(limit, settings)
    rows = await prompts.list_prompts(conn, after=after or "", limit=size + 1)
    items = rows[:size]
    return PromptPage(items=items, next_cursor=items[-1].name if len(rows) > size else None)


async def retire(conn: Connection, principal: Principal, name: str) -> None:
    """No longer listed or readable; its versions are kept and a later put continues them."""
    _require_trusted(principal)
    if not await prompts.retire(conn, name=name):
        raise _prompt_not_found(name)
