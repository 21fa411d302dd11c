"""Who is calling: credentials (API keys, user tokens, visitor ids) to a Principal."""
