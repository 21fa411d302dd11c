"""The application factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from service import errors
from service.api.conversations import ConversationController
from service.api.health import HealthController
from service.api.messages import MessageController
from service.db import lifespan, provide_connection
from service.queries import queries
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    queries()  # load and check every SQL file now, not on the first request
    problem_map: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
        errors.ChatkeepError: errors.from_domain,
        ValidationException: errors.from_validation,
        HTTPException: errors.from_http,
        **{error: errors.from_database for error in errors.DATABASE_ERRORS},
    }
    return Litestar(
        route_handlers=[HealthController, ConversationController, MessageController],
        dependencies={"conn": Provide(provide_connection)},
        lifespan=[lifespan(settings)],
        state=State({"settings": settings}),
        plugins=[
            ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=problem_map))
        ],
        exception_handlers={Exception: errors.unexpected},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="chatkeep",
            version="1",
            description="Conversation history for chat and LLM applications, on PostgreSQL.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
