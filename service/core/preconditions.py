"""Conditional writes: the versions an If-Match accepts (RFC 9110 13.1.1). A conversation's
version is its ETag; a write naming versions proceeds only when the stored one is among them."""

from __future__ import annotations

from typing import NamedTuple

from service.core.errors import PreconditionFailed


class Precondition(NamedTuple):
    # The accepted versions; None for "*", any current version.
    versions: frozenset[int] | None

    def require(self, version: int | None, conversation: object) -> None:
        """PreconditionFailed unless the conversation exists (version not None) at an accepted
        version."""
        if version is None:
            raise PreconditionFailed(f"conversation {conversation} does not exist yet")
        if self.versions is not None and version not in self.versions:
            raise PreconditionFailed(
                f"conversation {conversation} is at version {version}, not "
                + " or ".join(str(v) for v in sorted(self.versions))
            )

    def sql_versions(self) -> list[int] | None:
        """The accepted versions as a query parameter (null: any)."""
        return None if self.versions is None else sorted(self.versions)
