"""Typed functions over the query registry: one per named query, keyword-only arguments."""
