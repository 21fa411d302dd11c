"""Moving history in and out: importers (SQLite, JSON file stores, chatkeep's own NDJSON), the
exporter, and the verified bulk loader they share."""
