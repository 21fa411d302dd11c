"""The request class: JSON bodies are checked for how much they would become before they are
decoded.

A JSON body's decoded size is not bounded by its length: two bytes of ``[]`` become a Python
list of 56 bytes, so a 16 MiB body of nested empty arrays decodes to hundreds of MiB before
any check could run. A body is refused (413) when it holds more arrays, objects and values than
``max_body_bytes / 32`` (524,288 with the default 16 MiB): more than any real request of this
API carries, and a bound on what decoding it can cost. Text inside strings does not count.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from service.core.errors import TooLarge
from service.core.settings import Settings

# Bodies smaller than this cannot decode to much; they are not scanned.
SCAN_FROM_BYTES = 64 * 1024
BYTES_PER_VALUE = 32
# A JSON string, escapes included (the unrolled form runs in the regex engine's fast loops).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def count_values(body: bytes) -> int:
    """Arrays, objects and the values separated by commas, outside strings: about how many
    Python objects decoding the body makes."""
    structure = _STRING.sub(b"", body)
    return structure.count(b"[") + structure.count(b"{") + structure.count(b",")


class BoundedRequest(Request[Any, Any, Any]):
    async def body(self) -> bytes:
        body = await super().body()
        if len(body) >= SCAN_FROM_BYTES:
            settings: Settings = self.app.state.settings
            limit = settings.max_body_bytes // BYTES_PER_VALUE
            if (values := count_values(body)) > limit:
                raise TooLarge(
                    f"the JSON body holds {values} arrays, objects and values; the limit is "
                    f"{limit}",
                    field="body",
                )
        return body
