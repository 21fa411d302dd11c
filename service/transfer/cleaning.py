"""The documented rules that turn a source's odd values into storable ones (README "Importing").

Each rule either fixes a value (and reports it) or says it cannot be stored, so the caller skips
the row (and reports it). Nothing is dropped silently.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from service.core.schemas import ROLE_PATTERN
from service.transfer.report import Report

# Ids a source does not give as UUIDs are derived from it, stably: the same source always gets
# the same ids, which is what makes re-running an import a no-op.
ID_NAMESPACE = uuid.UUID("5b0c7c3e-8f1e-4f0a-9d67-2c1f0c6e9a41")
ROLE_NAME = re.compile(ROLE_PATTERN)
# Names other stores use for the core roles.
ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "function": "tool",
    "developer": "system",
}
# The role of a message whose source role cannot be stored (none, too long, characters a role
# name may not have); the source's role is kept in its metadata under SOURCE_ROLE_KEY.
FALLBACK_ROLE = "unknown"
SOURCE_ROLE_KEY = "_source_role"
# How many distinct storable source roles Cleaner.role remembers (a bound on its memory).
KNOWN_ROLES_MAX = 1000
# conversations_external_id and messages_external_id in migrations/0008.app_needs.sql.
EXTERNAL_ID_MAX = 255
# Seconds since the epoch larger than this are taken as milliseconds (year 5138 in seconds).
MILLISECONDS_FROM = 10**11


class Cleaner:
    def __init__(self, report: Report) -> None:
        self.report = report
        # Source roles already found storable, with the role stored: a source names a handful
        # of roles a million times.
        self.known_roles: dict[object, str] = {}

    def text(self, value: object, location: str, field: str) -> str | None:
        """Text without NUL (removed) and valid UTF-8 (bad bytes become U+FFFD)."""
        if value is None:
            return None
        if isinstance(value, bytes):
            try:
                text = value.decode()
            except UnicodeDecodeError:
                text = value.decode(errors="replace")
                self.report.problem(location, f"{field} is not UTF-8; bad bytes -> U+FFFD", "fixed")
        else:
            text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            self.report.problem(location, f"{field} contains NUL characters; removed", "fixed")
            text = text.replace("\x00", "")
        return text

    def role(self, value: object, location: str) -> tuple[str, str | None]:
        """The role to store, and the source's role when that could not be stored as it is (the
        caller keeps it in the message's metadata). An alias becomes its core role; any other
        name is lowercased and kept when it is a role name; what is not becomes FALLBACK_ROLE
        (reported): no message is skipped for its role."""
        known = self.known_roles.get(value) if isinstance(value, str | bytes) else None
        if known is not None:
            return known, None
        source = (self.text(value, location, "role") or "").strip()
        name = ROLE_ALIASES.get(source.lower(), source.lower())
        if ROLE_NAME.match(name):
            self._remember_role(value, name)
            return name, None
        if not source:
            self.report.problem(location, f"no role; stored as {FALLBACK_ROLE!r}", "fixed")
            return FALLBACK_ROLE, None
        self.report.problem(
            location,
            f"role {source!r} is not a role name; stored as {FALLBACK_ROLE!r}, "
            f"the source's role in metadata {SOURCE_ROLE_KEY}",
            "fixed",
        )
        return FALLBACK_ROLE, source

    def _remember_role(self, value: object, name: str) -> None:
        """Remember a source role stored as ``name`` without a report (one holding NUL was
        reported: its repeats must be too)."""
        if len(self.known_roles) >= KNOWN_ROLES_MAX:
            return
        nul = b"\x00" if isinstance(value, bytes) else "\x00"
        if isinstance(value, str | bytes) and nul not in value:  # type: ignore[operator]
            self.known_roles[value] = name

    def external_id(self, value: object, location: str, field: str) -> str | None:
        """The source's own id as text, to keep as external_id: None when there is none, or
        when it is longer than an external id may be (reported)."""
        if value is None:
            return None
        text = self.text(value, location, field) or ""
        if len(text) > EXTERNAL_ID_MAX:
            self.report.problem(
                location,
                f"{field} is over {EXTERNAL_ID_MAX} characters; not kept as external_id",
                "fixed",
            )
            return None
        return text or None

    def metadata(self, value: object, location: str) -> dict[str, Any]:
        """A JSON object: text is parsed; unparseable text is kept as {"_raw_metadata": text};
        another JSON value as {"_metadata": value}; NUL characters are removed."""
        if value is None or value in ("", b""):
            return {}
        if isinstance(value, bytes | str):
            raw = self.text(value, location, "metadata") or ""
            try:
                value = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                self.report.problem(
                    location, "metadata is not JSON; kept as _raw_metadata", "fixed"
                )
                return {"_raw_metadata": raw}
            if isinstance(value, dict) and "\\u0000" not in raw:
                return value  # parsed from text: a NUL could only come from a \u0000 escape
        if not isinstance(value, dict):
            self.report.problem(location, "metadata is not an object; kept as _metadata", "fixed")
            value = {"_metadata": value}
        cleaned: dict[str, Any] = self._without_nul(value, location)
        return cleaned

    def _without_nul(self, value: Any, location: str) -> Any:
        if isinstance(value, str):
            return self.text(value, location, "metadata")
        if isinstance(value, dict):
            return {
                self.text(key, location, "metadata"): self._without_nul(item, location)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._without_nul(item, location) for item in value]
        return value

    def timestamp(self, value: object, location: str, field: str) -> datetime | None:
        """The instant ``value`` denotes (parse_time); anything else is reported and treated as
        missing."""
        if value is None or value in ("", b""):
            return None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        parsed = parse_time(value if number else self.text(value, location, field))
        if parsed is None:
            self.report.problem(
                location, f"{field} {value!r} is not a time; treated as missing", "fixed"
            )
        return parsed


def parse_time(value: object) -> datetime | None:
    """The instant ``value`` denotes, or None: ISO 8601 text (a trailing Z, a space separator;
    no zone means UTC), or epoch seconds or milliseconds, as a number or as text."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > MILLISECONDS_FROM else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def stable_id(value: object, scope: str) -> uuid.UUID:
    """The source's id when it is a UUID, else a UUID derived from it within ``scope``."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.uuid5(ID_NAMESPACE, f"{scope}\x1f{text}")


def json_raw(value: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))
