"""Reading msgspec's validation messages: they name the offending field as a JSON path."""

from __future__ import annotations

import re

# msgspec reports where input went wrong as "... - at `$.messages[0].role`".
MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


# ... a missing field as "Object missing required field `role` - at `$.messages[0]`", and an
# unexpected one as "Object contains unknown field `x` - at `$.messages[0]`".
NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`$")


def field_of(msgspec_message: str) -> tuple[str, str | None]:
    """Split a msgspec error message into its text and the JSON path of the field it names."""
    match = MSGSPEC_PATH.match(msgspec_message)
    if not match:
        return msgspec_message, None
    path = (match["path"] or "").lstrip(".")
    if missing := NAMED_FIELD.match(match["message"]):
        path = f"{path}.{missing['name']}" if path else missing["name"]
    return match["message"], path or None
