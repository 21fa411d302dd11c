"""The application factory."""

from __future__ import annotations

import logging

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import HttpMethod
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Reference, SecurityRequirement, SecurityScheme
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from litestar.routes import HTTPRoute

from service.api import consistency, problems
from service.api.accounts import AccountTokenController
from service.api.admission import Admission, AdmissionGate
from service.api.authentication import Authenticate
from service.api.consistency import (
    provide_routed_connection,
    replicas_lifespan,
    send_consistency_token,
)
from service.api.conversation_lists import ConversationListController
from service.api.conversations import ConversationController
from service.api.demo import DemoLoginController
from service.api.events import EventController
from service.api.files import FileController
from service.api.header_limits import limit_headers
from service.api.health import HealthController
from service.api.lifespan import listener_lifespan, pool_lifespan, provide_connection
from service.api.messages import MessageController
from service.api.metrics import metrics_lifespan, metrics_route
from service.api.observe import Observe
from service.api.openapi import CompletedJson, CompletedSwagger
from service.api.pages import page_controller
from service.api.prompts import PromptController
from service.api.pruning import prune_lifespan
from service.api.requests import BoundedRequest
from service.api.search import SearchController
from service.api.tracing import tracing_plugins
from service.api.users import UserController
from service.core import logs, request_ids, visitors
from service.core.collector import freeze_start_up_objects
from service.core.page_cache import PageCache
from service.core.settings import Settings, get_settings
from service.db.queries import queries

log = logging.getLogger("chatkeep")

BEARER = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API key (ck_...) of a trusted back end, or a user token (JWT, HS256).",
)
SESSION = SecurityScheme(
    type="apiKey",
    name=visitors.HEADER,
    security_scheme_in="header",
    description=f"An anonymous visitor's session id: {visitors.RULE}.",
)


def security_schemes(settings: Settings) -> dict[str, SecurityScheme | Reference]:
    """The credentials this deployment accepts: visitors' session ids only when anonymous
    access is on."""
    schemes: dict[str, SecurityScheme | Reference] = {"bearer": BEARER}
    if settings.allow_anonymous:
        schemes["session"] = SESSION
    return schemes


def security(settings: Settings) -> list[SecurityRequirement]:
    """Any one of the schemes; none at all when requests without credentials are let in."""
    requirements: list[SecurityRequirement] = [{name: []} for name in security_schemes(settings)]
    if settings.insecure_no_auth:
        requirements.append({})
    return requirements


def answer_options_for_every_method(router: Router) -> Router:
    """Litestar 2 binds a path's automatic OPTIONS handler to the route of the path's first
    handler, so its Allow header leaves out the methods of the others (litestar#4169, fixed in
    3): rebuild each route, which makes an OPTIONS handler that lists them all."""
    for index, route in enumerate(router.routes):
        if isinstance(route, HTTPRoute):
            handlers = [h for h in route.route_handlers if h.http_methods != {HttpMethod.OPTIONS}]
            router.routes[index] = HTTPRoute(path=route.path, route_handlers=handlers)
    return router


def api_v1(settings: Settings) -> Router:
    """Everything under /v1: authenticated and permission-checked (Authenticate); handlers
    scope every query to ``request.user``."""
    router = Router(
        path="/v1",
        route_handlers=[
            ConversationController,
            ConversationListController,
            MessageController,
            FileController,
            PromptController,
            SearchController,
            UserController,
            EventController,
        ],
        middleware=[Authenticate],
        security=security(settings),
    )
    return answer_options_for_every_method(router)


def cors(settings: Settings) -> CORSConfig | None:
    """Browser front ends on the configured origins may call with X-Session-ID or a token."""
    origins = settings.cors_origin_list
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Range",
            "If-None-Match",
            # Conditional writes (README "Conversation state and your own ids").
            "If-Match",
            "Last-Event-ID",
            visitors.HEADER,
            request_ids.HEADER,
            consistency.HEADER,
        ],
        expose_headers=[
            request_ids.HEADER,
            consistency.HEADER,
            "Retry-After",
            "WWW-Authenticate",
            "ETag",
            "Content-Disposition",
            "Content-Range",
        ],
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    logs.configure_once(settings)
    queries()  # load and check every SQL file now, not on the first request
    if settings.insecure_no_auth:
        log.warning(
            "CHATKEEP_INSECURE_NO_AUTH is on: requests WITHOUT CREDENTIALS ACT AS A TRUSTED "
            "CALLER and can read and change every conversation. Local development only."
        )
    app = Litestar(
        route_handlers=[
            HealthController,
            api_v1(settings),
            # Public, and absent (404) unless accounts are on.
            *([AccountTokenController] if settings.accounts else []),
            # For the operator's scraper (README "Observability"): 404 unless a token is set.
            *([metrics_route(settings)] if settings.metrics_token else []),
            # The browser pages (README "Operator console", "Demo chat"): 404 unless on.
            *([page_controller("console")] if settings.console else []),
            *([page_controller("demo"), DemoLoginController] if settings.demo else []),
        ],
        # With read replicas, reads may take a replica's connection (README "Read replicas").
        dependencies={
            "conn": Provide(
                provide_routed_connection if settings.replica_url_list else provide_connection
            )
        },
        before_send=[send_consistency_token] if settings.replica_url_list else [],
        lifespan=[
            pool_lifespan(settings),
            *([replicas_lifespan(settings)] if settings.replica_url_list else []),
            listener_lifespan(settings),
            prune_lifespan(settings),
            metrics_lifespan(settings),
        ],
        cors_config=cors(settings),
        # The page cache is per worker: each worker process builds its own app.
        state=State({"settings": settings, "page_cache": PageCache(settings.page_cache_bytes)}),
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(exception_to_problem_detail_map=problems.exception_map())
            ),
            *tracing_plugins(settings),
        ],
        exception_handlers={Exception: problems.unexpected},
        # Logging is chatkeep's (service/core/logs.py), configured below, not Litestar's.
        logging_config=None,
        # Each worker process builds its own app, so each has its own gate.
        middleware=[
            AdmissionGate(Admission(settings.max_in_flight, settings.admission_wait_ms / 1000)),
            limit_headers,
        ],
        request_max_body_size=settings.max_body_bytes,
        request_class=BoundedRequest,
        openapi_config=OpenAPIConfig(
            title="chatkeep",
            version="1",
            description="Conversation history for chat and LLM applications, on PostgreSQL.",
            path="/schema",
            render_plugins=[CompletedSwagger(settings), CompletedJson(settings)],
            components=Components(security_schemes=security_schemes(settings)),
        ),
    )
    # Outermost, around routing and error handling: every response gets its request id and is
    # counted, a 404 or a problem too (README "Observability").
    app.asgi_handler = Observe(app.asgi_handler, settings)
    return app


def create_worker_app() -> Litestar:
    """The app as a server's worker runs it, the one app of its process: once started, what
    lives as long as the worker is kept out of the garbage collector's walks
    (service/core/collector.py). Not in create_app: a process that builds many apps (the
    tests) would keep each one's garbage for good."""
    app = create_app()
    # After the lifespans: what they opened lives as long as the app too.
    app.on_startup.append(freeze_start_up_objects)
    return app
