"""Translate one DATABASE_URL into what asyncpg (the service) and psycopg (yoyo) each accept.

Managed and serverless PostgreSQL hand out libpq-style URLs (``sslmode``, ``channel_binding``) and
frameworks write ``postgresql+asyncpg://``. libpq (psycopg) understands every libpq parameter;
asyncpg understands ``sslmode`` but would send unknown parameters such as ``channel_binding`` to
the server as settings, which the server rejects.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CHANNEL_BINDING_MODES = ("disable", "prefer", "require")
# SQLAlchemy's asyncpg dialect spells TLS as ?ssl=...; libpq only knows sslmode.
SSL_FLAG_TO_MODE = {"true": "require", "1": "require", "false": "disable", "0": "disable"}


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be used; the message says why."""


def _split(url: str) -> tuple[str, str, str, dict[str, str]]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ACCEPTED_SCHEMES:
        raise DatabaseUrlError(
            f"DATABASE_URL scheme {parts.scheme!r} is not one of {', '.join(ACCEPTED_SCHEMES)}"
        )
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "ssl" in params:
        flag = params.pop("ssl").lower()
        mode = SSL_FLAG_TO_MODE.get(flag, flag)
        params.setdefault("sslmode", mode)
    if params.get("sslmode", "prefer") not in SSL_MODES:
        raise DatabaseUrlError(f"DATABASE_URL sslmode must be one of {', '.join(SSL_MODES)}")
    if params.get("channel_binding", "prefer") not in CHANNEL_BINDING_MODES:
        raise DatabaseUrlError(
            f"DATABASE_URL channel_binding must be one of {', '.join(CHANNEL_BINDING_MODES)}"
        )
    if params.get("channel_binding") == "require" and params.get("sslmode", "prefer") in (
        "disable",
        "allow",
        "prefer",
    ):
        # Channel binding only exists inside TLS: insist on TLS rather than silently lose it.
        params["sslmode"] = "require"
    return parts.netloc, parts.path, parts.fragment, params


def asyncpg_dsn(url: str) -> str:
    """The DSN for asyncpg: plain ``postgresql://`` scheme, no libpq-only parameters."""
    netloc, path, fragment, params = _split(url)
    if params.pop("channel_binding", None) == "require":
        log.warning(
            "DATABASE_URL asks for channel_binding=require: asyncpg cannot bind channels, "
            "the service connects with TLS (sslmode=%s) and SCRAM without binding",
            params["sslmode"],
        )
    return urlunsplit(("postgresql", netloc, path, urlencode(params), fragment))


def yoyo_url(url: str) -> str:
    """The URL for yoyo's psycopg 3 backend; libpq honours every parameter itself."""
    netloc, path, fragment, params = _split(url)
    return urlunsplit(("postgresql+psycopg", netloc, path, urlencode(params), fragment))


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and `chatkeep check`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
