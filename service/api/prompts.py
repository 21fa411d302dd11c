"""Named system prompts, versioned: put, read (latest or one version), versions, list, retire.

Prompts are the deployment's configuration, shared by all conversations, so only trusted back
ends (API keys) use them; user tokens and visitors get a 403.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Response

from service.api.params import AuthenticatedRequest, Limit
from service.api.problems import PROBLEM_RESPONSES
from service.db import PooledConnection
from service.errors import Forbidden, NotFound
from service.models import (
    PROMPT_NAME_PATTERN,
    PromptPage,
    PromptPut,
    PromptVersion,
    PromptVersionPage,
)
from service.store import prompts
from service.validation import check_content, check_metadata, page_size

Name = Annotated[
    str,
    PathParameter(
        pattern=PROMPT_NAME_PATTERN,
        description="Letters, digits, '.', '_' and '-', starting with a letter or digit; at "
        "most 128 characters.",
    ),
]
Version = Annotated[
    int | None,
    QueryParameter(ge=1, le=2**31 - 1, description="This version instead of the latest."),
]
BeforeVersion = Annotated[
    int | None,
    QueryParameter(name="before", ge=1, le=2**31 - 1, description="Only versions below this one."),
]
AfterName = Annotated[
    str | None,
    QueryParameter(name="after", max_length=128, description="Only prompts named after this."),
]
# Above any version number (versions are integers).
NO_VERSION_BOUND = 2**31 - 1


def _require_trusted(request: AuthenticatedRequest) -> None:
    if not request.user.trusted:
        raise Forbidden("prompts are managed with an API key", field="Authorization")


def _prompt_not_found(name: str, version: int | None = None) -> NotFound:
    what = f"prompt {name!r}" if version is None else f"version {version} of prompt {name!r}"
    return NotFound(f"{what} does not exist", field="version" if version else "name")


class PromptController(Controller):
    path = "/prompts"
    tags = ("prompts",)

    @put("/{name:str}", status_code=201, responses=PROBLEM_RESPONSES)
    async def put_prompt(
        self,
        name: Name,
        data: JSONBody[PromptPut],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[PromptVersion]:
        """Store a new version of the prompt (201). Sending what the latest version already
        says returns that version (200), so a retry adds nothing. A retired prompt comes back."""
        _require_trusted(request)
        check_content(data.content, "content", state.settings)
        check_metadata(data.metadata, "metadata", state.settings)
        async with conn.transaction():
            version, new = await prompts.put(
                conn, name=name, content=data.content, metadata=data.metadata
            )
        return Response(version, status_code=201 if new else 200)

    @get("/{name:str}", responses=PROBLEM_RESPONSES)
    async def get_prompt(
        self,
        name: Name,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        version: Version = None,
    ) -> PromptVersion:
        """The latest version, or `?version=N`."""
        _require_trusted(request)
        found = await prompts.get(conn, name=name, version=version)
        if found is None:
            raise _prompt_not_found(name, version)
        return found

    @get("/{name:str}/versions", responses=PROBLEM_RESPONSES)
    async def list_versions(
        self,
        *,
        name: Name,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        before: BeforeVersion = None,
    ) -> PromptVersionPage:
        """Versions, newest first; pass `next_cursor` back as `before` for older ones."""
        _require_trusted(request)
        size = page_size(limit, state.settings)
        rows = await prompts.versions(
            conn, name=name, before=before or NO_VERSION_BOUND, limit=size + 1
        )
        if not rows and await prompts.get(conn, name=name, version=None) is None:
            raise _prompt_not_found(name)
        items = rows[:size]
        return PromptVersionPage(
            items=items, next_cursor=items[-1].version if len(rows) > size else None
        )

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_prompts(
        self,
        *,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        after: AfterName = None,
    ) -> PromptPage:
        """Prompts in use, by name; pass `next_cursor` back as `after` for the next page."""
        _require_trusted(request)
        size = page_size(limit, state.settings)
        rows = await prompts.list_prompts(conn, after=after or "", limit=size + 1)
        items = rows[:size]
        return PromptPage(items=items, next_cursor=items[-1].name if len(rows) > size else None)

    @delete("/{name:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def retire_prompt(
        self,
        name: Name,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> None:
        """Retire the prompt: it is no longer listed or readable; its versions are kept, and a
        later PUT continues their numbering."""
        _require_trusted(request)
        if not await prompts.retire(conn, name=name):
            raise _prompt_not_found(name)
