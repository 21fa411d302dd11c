"""Where a file store keeps each conversation's attachments (``chatkeep import files
--layout``): a path pattern below the import directory in which ``{conversation}`` stands for
one name of the conversation.

    {conversation}/**              DIR/<name>/, at any depth (the default)
    session_files/{conversation}/* the files directly in session_files/<name>/
    filled/{conversation}.pdf      one file per conversation

``*`` and ``?`` match within one path component, ``**`` (a whole component) any number of
directories, and a pattern ending in ``/`` means everything below. A conversation's names are
its file's name without ``.json``, its source id and its chatkeep id; a name that is not one
plain path component (``/``, ``..``) never names a folder.

Each pattern reads as little as it can: the directories its literal start names (with the
conversation's name put in), once per conversation; when the pattern has a wildcard before or
beside ``{conversation}``, the directory above it is listed once per run and the listing kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from service.transfer.source_tree import SourceTree

CONVERSATION = "{conversation}"
DEFAULT_LAYOUT = CONVERSATION + "/**"
ANY_DEPTH = "**"
_WILDCARDS = frozenset("*?")
_FORBIDDEN = frozenset("[]{}\\\x00")


class LayoutError(ValueError):
    """A pattern that names no attachment folder, or could leave the import directory."""


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in {".", ".."} and not set(name) & {"/", "\\", "\x00"}


def _component_regex(part: str, name: str) -> str:
    out = []
    rest = part
    while rest:
        if rest.startswith(CONVERSATION):
            out.append(re.escape(name))
            rest = rest[len(CONVERSATION) :]
            continue
        char, rest = rest[0], rest[1:]
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
    return "".join(out)


class Layout:
    """One pattern, checked when it is given (a bad one stops the import before it starts)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        text = pattern + ANY_DEPTH if pattern.endswith("/") else pattern
        self.parts = text.split("/")
        if text.count(CONVERSATION) != 1:
            raise LayoutError(f"{pattern!r}: name the conversation's place with one {CONVERSATION}")
        for part in self.parts:
            if part in {"", ".", ".."} or set(part.replace(CONVERSATION, "")) & _FORBIDDEN:
                raise LayoutError(
                    f"{pattern!r}: a relative path of names, '*', '?', '**' and {CONVERSATION}"
                )
            if ANY_DEPTH in part and part != ANY_DEPTH:
                raise LayoutError(f"{pattern!r}: '**' stands for whole path components only")
        self.at = next(n for n, part in enumerate(self.parts) if CONVERSATION in part)
        # Leading components without a wildcard: a path to open, once the name is put in.
        self.literal = next(
            (n for n, part in enumerate(self.parts) if set(part) & _WILDCARDS), len(self.parts)
        )
        # Listings of directories above the conversation's place, read once per run.
        self._listings: dict[tuple[Path, bool], list[Path]] = {}

    def __repr__(self) -> str:
        return f"Layout({self.pattern!r})"

    def _regex(self, name: str) -> re.Pattern[str]:
        pieces = []
        for n, part in enumerate(self.parts):
            last = n == len(self.parts) - 1
            if part == ANY_DEPTH:
                pieces.append("(?:[^/]+/)*[^/]+" if last else "(?:[^/]+/)*")
            else:
                pieces.append(_component_regex(part, name) + ("" if last else "/"))
        return re.compile("".join(pieces))

    def files(self, tree: SourceTree, names: Iterable[str]) -> Iterator[Path]:
        """The regular files of the conversation known by ``names``, sorted per name."""
        for name in names:
            if _is_plain_name(name):
                yield from self._files_of(tree, name)

    def _files_of(self, tree: SourceTree, name: str) -> Iterator[Path]:
        opened = [part.replace(CONVERSATION, name) for part in self.parts[: self.literal]]
        if self.literal == len(self.parts):
            path = tree.root.joinpath(*opened)
            if tree.regular_file(path):
                yield path
            return
        base = tree.root.joinpath(*opened)
        remaining = self.parts[self.literal :]
        recursive = len(remaining) > 1 or ANY_DEPTH in remaining
        if self.at < self.literal:
            # The base is the conversation's own: read it for this conversation only.
            listing: Iterable[Path] = _walk(tree, base, recursive)
        else:
            listing = self._shared_listing(tree, base, recursive)
        regex = self._regex(name)
        for path in listing:
            if regex.fullmatch(path.relative_to(tree.root).as_posix()):
                yield path

    def _shared_listing(self, tree: SourceTree, base: Path, recursive: bool) -> list[Path]:
        key = (base, recursive)
        if key not in self._listings:
            self._listings[key] = list(_walk(tree, base, recursive))
        return self._listings[key]


def _walk(tree: SourceTree, base: Path, recursive: bool) -> Iterable[Path]:
    return tree.files(base, recursive=recursive) if tree.directory(base) else ()


def attachment_files(
    tree: SourceTree, layouts: Iterable[Layout], names: Iterable[str]
) -> list[Path]:
    """The files every layout finds for the conversation known by ``names``, each once, in the
    order found."""
    unique = list(dict.fromkeys(names))
    found: dict[Path, None] = {}
    for layout in layouts:
        found.update(dict.fromkeys(layout.files(tree, unique)))
    return list(found)
