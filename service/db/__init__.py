"""PostgreSQL plumbing: the query registry, connections (pool and standalone), the database URL,
migrations and the embedded server. No business rules."""
