"""chatkeep: a conversation-history service on PostgreSQL."""
