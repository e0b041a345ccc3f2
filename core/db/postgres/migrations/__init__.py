"""The core schema: versioned SQL migrations applied by ``core.db.migrations`` (never on the request path)."""
