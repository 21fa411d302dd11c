"""Framework-free foundations every layer shares: settings, domain errors, the caller and its
scope, API schemas, and pure rules (validation, cursors, credential formats)."""
