"""Liveness and readiness probes."""

from __future__ import annotations

from types import MappingProxyType

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from service.api.admission import UNGATED
from service.api.problems import RETRY_AFTER_SECONDS
from service.core.schemas import Liveness, Readiness
from service.core.settings import Settings
from service.history import health


class HealthController(Controller):
    path = "/health"
    tags = ("health",)
    # A busy worker is not a dead one: probes are never refused at the admission gate.
    opt = MappingProxyType({UNGATED: True})

    @get("/live")
    async def live(self) -> Liveness:
        """The process is up and serving requests."""
        return Liveness()

    @get(
        "/ready",
        responses={503: ResponseSpec(Readiness, description="Not ready (the body says why)")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        """Ready when PostgreSQL answers and has every migration this version ships, and the
        instance is not shutting down (status "draining": README "Running several instances");
        else 503."""
        settings: Settings = state.settings
        readiness = await health.readiness(
            state.pool, settings.pool_acquire_timeout, draining=state.drain.draining
        )
        if not readiness.database:
            return Response(
                readiness, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS}
            )
        return Response(readiness, status_code=200 if readiness.status == "ready" else 503)
