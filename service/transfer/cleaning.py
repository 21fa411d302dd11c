"""The documented rules that turn a source's odd values into storable ones (README "Importing").

Each rule either fixes a value (and reports it) or says it cannot be stored, so the caller skips
the row (and reports it). Nothing is dropped silently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from service.transfer.report import Report

# Ids a source does not give as UUIDs are derived from it, stably: the same source always gets
# the same ids, which is what makes re-running an import a no-op.
ID_NAMESPACE = uuid.UUID("5b0c7c3e-8f1e-4f0a-9d67-2c1f0c6e9a41")
ROLES = frozenset({"system", "user", "assistant", "tool"})
# Names other stores use for the same roles.
ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "function": "tool",
    "developer": "system",
}
# Seconds since the epoch larger than this are taken as milliseconds (year 5138 in seconds).
MILLISECONDS_FROM = 10**11


class Cleaner:
    def __init__(self, report: Report) -> None:
        self.report = report

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

    def role(self, value: object, location: str) -> str | None:
        """A chatkeep role, or None when there is none to map it to (the message is skipped)."""
        text = (self.text(value, location, "role") or "").strip().lower()
        if text in ROLES:
            return text
        if text in ROLE_ALIASES:
            return ROLE_ALIASES[text]
        self.report.problem(location, f"unknown role {text!r}", "skipped")
        return None

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
        """ISO 8601 text (a trailing Z, a space separator; no zone means UTC) or epoch seconds
        or milliseconds; anything else is reported and treated as missing."""
        if value is None or value in ("", b""):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > MILLISECONDS_FROM else value
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                pass
        else:
            text = (self.text(value, location, field) or "").strip()
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        self.report.problem(
            location, f"{field} {value!r} is not a time; treated as missing", "fixed"
        )
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
