"""What an import saw: counts, and every bad row with where it was and what was done about it.

Bad rows are printed as they are found (never collected: an import runs in constant memory).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TextIO

Action = Literal["fixed", "skipped"]


@dataclass
class Report:
    # Where problem lines go; the CLI passes tqdm.write so they do not garble the progress bar.
    write: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    conversations_read: int = 0
    messages_read: int = 0
    conversations_imported: int = 0
    messages_imported: int = 0
    conversations_present: int = 0
    conversations_verified: int = 0
    mismatches: int = 0
    fixed: int = 0
    skipped: int = 0
    prompts_imported: int = 0
    files_imported: int = 0
    # The SQLite importer cleans the next batch in a thread while the loader writes and verifies
    # the previous one: both report problems.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def problem(self, location: str, what: str, action: Action) -> None:
        with self._lock:
            if action == "fixed":
                self.fixed += 1
            else:
                self.skipped += 1
            self.write(f"{location}: {what} ({action})")

    def mismatch(self, location: str, what: str) -> None:
        with self._lock:
            self.mismatches += 1
            self.write(f"{location}: VERIFICATION FAILED: {what}")

    def summary(self, out: TextIO, dry_run: bool) -> None:
        verb = "would import" if dry_run else "imported"
        print(
            f"read {self.conversations_read} conversations, {self.messages_read} messages; "
            f"{verb} {self.conversations_imported} conversations, {self.messages_imported} "
            f"messages; {self.conversations_present} already present; "
            f"{self.prompts_imported} prompt versions, {self.files_imported} files; "
            f"bad rows: {self.fixed} fixed, {self.skipped} skipped",
            file=out,
        )
        if not dry_run:
            print(
                f"verified {self.conversations_verified} conversations against PostgreSQL: "
                + (f"{self.mismatches} MISMATCHES" if self.mismatches else "all match"),
                file=out,
            )
