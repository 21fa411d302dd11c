"""Named system prompts, versioned: put, read (latest or one version), versions, list, retire.

Prompts are the deployment's configuration, shared by all conversations, so only trusted back
ends (API keys) use them; user tokens and visitors get a 403.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, put
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Response

from service.api.openapi import PROBLEM_RESPONSES, stored_again
from service.api.params import AuthenticatedRequest, ConnectionDependency, Limit
from service.core.schemas import (
    PROMPT_NAME_PATTERN,
    PromptPage,
    PromptPut,
    PromptVersion,
    PromptVersionPage,
)
from service.history import prompts

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


class PromptController(Controller):
    path = "/prompts"
    tags = ("prompts",)

    @put(
        "/{name:str}",
        status_code=201,
        responses={
            **PROBLEM_RESPONSES,
            **stored_again(PromptVersion, "The latest version already says this: that version"),
        },
    )
    async def put_prompt(
        self,
        name: Name,
        data: JSONBody[PromptPut],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[PromptVersion]:
        """Store a new version of the prompt (201). Sending what the latest version already
        says returns that version (200), so a retry adds nothing. A retired prompt comes back."""
        version, new = await prompts.put(conn, request.user, name, data, state.settings)
        return Response(version, status_code=201 if new else 200)

    @get("/{name:str}", responses=PROBLEM_RESPONSES)
    async def get_prompt(
        self,
        name: Name,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        version: Version = None,
    ) -> PromptVersion:
        """The latest version, or `?version=N`."""
        return await prompts.get(conn, request.user, name, version)

    @get("/{name:str}/versions", responses=PROBLEM_RESPONSES)
    async def list_versions(
        self,
        *,
        name: Name,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        before: BeforeVersion = None,
    ) -> PromptVersionPage:
        """Versions, newest first; pass `next_cursor` back as `before` for older ones."""
        return await prompts.versions_page(
            conn, request.user, name, limit=limit, before=before, settings=state.settings
        )

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_prompts(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        after: AfterName = None,
    ) -> PromptPage:
        """Prompts in use, by name; pass `next_cursor` back as `after` for the next page."""
        return await prompts.list_page(
            conn, request.user, limit=limit, after=after, settings=state.settings
        )

    @delete("/{name:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def retire_prompt(
        self,
        name: Name,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> None:
        """Retire the prompt: it is no longer listed or readable; its versions are kept, and a
        later PUT continues their numbering."""
        await prompts.retire(conn, request.user, name)
