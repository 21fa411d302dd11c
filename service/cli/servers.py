"""The HTTP servers `chatkeep serve --server` runs the app under: uvicorn (the default) or
granian (an optional extra, `pip install 'chatkeep[granian]'`), both with uvloop, the app's
factory in each worker, chatkeep's own logging and access log."""

from __future__ import annotations

import math
from typing import Any, Literal

from service.core import logs
from service.core.settings import Settings

APP_FACTORY = "service.app:create_worker_app"
SERVERS = ("uvicorn", "granian")
ServerName = Literal["uvicorn", "granian"]


class ServerMissing(Exception):
    """The chosen server's package is not installed."""


def run(server: ServerName, settings: Settings, *, host: str, port: int, workers: int) -> None:
    if server == "granian":
        _granian(settings, host=host, port=port, workers=workers)
    else:
        _uvicorn(settings, host=host, port=port, workers=workers)


def _uvicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        # chatkeep's own format and access log (service/api/observe.py), request ids.
        log_config=logs.logging_config(settings),
        access_log=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.stop_timeout_seconds),
    )


def _granian(settings: Settings, *, host: str, port: int, workers: int) -> None:
    try:
        from granian.constants import Interfaces, Loops
        from granian.server import Server
    except ImportError as exc:
        raise ServerMissing(
            "granian is not installed: pip install 'chatkeep[granian]' (or use --server uvicorn)"
        ) from exc
    options: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.ASGI,
        "workers": workers,
        "loop": Loops.uvloop,
        "factory": True,
        "log_level": settings.log_level.lower(),
        "log_dictconfig": logs.logging_config(settings),
        # chatkeep writes its own access log (service/api/observe.py).
        "log_access": False,
        "workers_kill_timeout": math.ceil(settings.stop_timeout_seconds),
    }
    Server(APP_FACTORY, **options).serve()
