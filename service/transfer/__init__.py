"""Moving history in and out: importers (SQLite, JSON file stores, chatkeep's own NDJSON), the
exporter, and the verified bulk loader they share."""


class SourceError(ValueError):
    """A source cannot be imported at all (missing table or column, not a SQLite file, not an
    export); the message says why. Every importer raises it."""
