"""Log lines: plain text (the default) or one JSON object per line, each carrying the id of the
request it was written for (``request_ids.current``).

``logging_config`` is a ``logging.config.dictConfig`` document: uvicorn applies it in every
worker process (it must pickle, so it names the classes below by their import path), and it
sends uvicorn's loggers and chatkeep's through the same handler and format."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from service.core import request_ids
from service.core.settings import Settings

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# What every LogRecord has: anything else on a record was passed as ``extra=`` and goes into
# the JSON object as a field of its own.
# (uvicorn adds color_message, its message with terminal colours.)
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}
_encoder = msgspec.json.Encoder()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_ids.current.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, the
    record's extra fields, and the exception's traceback as ``exc_info`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return _encoder.encode(line).decode()


def logging_config(settings: Settings) -> dict[str, Any]:
    """Every logger (uvicorn's included) through one handler on standard error, in the
    configured format, at the configured level."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"chatkeep": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "chatkeep",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers are replaced by the root's (propagation).
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            # chatkeep writes its own access log (service/api/observe.py), with request ids.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    """Apply ``logging_config`` to this process (the CLI's commands)."""
    import logging.config

    logging.config.dictConfig(logging_config(settings))


def configure_once(settings: Settings) -> None:
    """``configure``, unless this process's logging carries request ids already: `chatkeep
    serve` had uvicorn apply ``logging_config`` in the worker before the app was made (under a
    plain ``uvicorn`` command, this is where it happens), and the app factory may run more than
    once in one process (tests), each time leaving alone what the first did."""
    for handler in logging.getLogger().handlers:
        if any(isinstance(each, RequestIdFilter) for each in handler.filters):
            return
    configure(settings)
