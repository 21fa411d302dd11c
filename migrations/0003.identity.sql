-- Identity: anonymous visitors own conversations by a hash of their session id; trusted back ends
-- authenticate with API keys stored only as hashes.
-- depends: 0002.messages

-- SHA-256 of the visitor's X-Session-ID; null once the conversation belongs to a user (claim).
ALTER TABLE conversations
    ADD COLUMN owner bytea,
    ADD CONSTRAINT conversations_owner_hash CHECK (owner IS NULL OR octet_length(owner) = 32);

-- "A visitor's conversations, newest updated first", and the claim that moves them to a user.
CREATE INDEX conversations_owner_recent ON conversations (owner, updated_at, id)
    WHERE owner IS NOT NULL;

CREATE TABLE api_keys (
    -- Public part of the key (ck_<id>_<secret>): finds the row without revealing the secret.
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    -- SHA-256 of the secret part. Secrets are 256 random bits, so a slow hash adds nothing.
    secret_hash bytea       NOT NULL,
    permissions text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_keys_secret_hash CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT api_keys_permissions
        CHECK (permissions <@ ARRAY['read', 'write', 'erase']::text[] AND cardinality(permissions) > 0)
);

-- Every worker caches key records and listens here: a revocation (by the CLI or by hand in SQL)
-- reaches all of them in the time a NOTIFY takes.
CREATE FUNCTION api_keys_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chatkeep_api_keys', OLD.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_notify_change();
