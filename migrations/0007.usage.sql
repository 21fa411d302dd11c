-- Usage: how many conversations and stored bytes each user and each anonymous visitor owns, so
-- quotas (CHATKEEP_USER_MAX_*, CHATKEEP_VISITOR_MAX_*) are checked by reading one row. Triggers
-- keep the counts true whatever writes (the API, the importers' COPY, cascades, SQL by hand).
-- Stored bytes are message content and metadata (as text) plus file sizes, each file counted
-- where it is attached even when its content is stored once.
-- depends: 0006.visitor_hash

-- The owner a usage row counts for: the conversation's user, else its visitor; null for
-- conversations of neither (made by API keys), which no quota limits.
CREATE FUNCTION usage_owner(user_id text, visitor_hash bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id
                WHEN visitor_hash IS NOT NULL THEN 'visitor:' || encode(visitor_hash, 'hex') END
$$;

-- What a message takes. The metadata's text, not pg_column_size: the stored size depends on
-- compression, so adding a row and removing it again could count different sizes.
CREATE FUNCTION message_bytes(content text, metadata jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT octet_length(content)::bigint + octet_length(metadata::text) $$;

-- Bytes of one conversation's messages and files: when it is deleted, its owner's usage drops
-- by this at once (its cascaded messages and files no longer find it).
ALTER TABLE conversations ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE conversations c
SET bytes = coalesce((SELECT sum(message_bytes(m.content, m.metadata)) FROM messages m
                      WHERE m.conversation_id = c.id), 0)
          + coalesce((SELECT sum(f.size) FROM files f WHERE f.conversation_id = c.id), 0);

-- One row per owner with at least one conversation; erasing the last one removes the row, so
-- no user id outlives the user's data.
CREATE TABLE owner_usage (
    owner         text   PRIMARY KEY,
    conversations bigint NOT NULL,
    bytes         bigint NOT NULL
);
INSERT INTO owner_usage (owner, conversations, bytes)
SELECT usage_owner(user_id, visitor_hash), count(*), sum(bytes)
FROM conversations
WHERE usage_owner(user_id, visitor_hash) IS NOT NULL
GROUP BY 1;

-- Add deltas[i] bytes to conversation conversation_ids[i] and to its owner.
CREATE FUNCTION usage_add_bytes(conversation_ids uuid[], deltas bigint[]) RETURNS void
-- plpgsql keeps the statement's plan across calls, and a generic one: planning it afresh for its
-- parameters on every call made an append a third slower; the plan is the same for any arrays.
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    WITH changed AS (
        SELECT change.conversation_id, sum(change.delta)::bigint AS delta
        FROM unnest(conversation_ids, deltas) AS change (conversation_id, delta)
        GROUP BY change.conversation_id
        HAVING sum(change.delta) <> 0
    ), counted AS (
        -- A conversation being deleted is gone already: its owner lost its bytes with it.
        UPDATE conversations c
        SET bytes = c.bytes + changed.delta
        FROM changed
        WHERE c.id = changed.conversation_id
        RETURNING usage_owner(c.user_id, c.visitor_hash) AS owner, changed.delta
    )
    UPDATE owner_usage u
    SET bytes = u.bytes + owners.delta
    FROM (SELECT owner, sum(delta)::bigint AS delta FROM counted GROUP BY owner) owners
    WHERE u.owner = owners.owner;
END;
$$;

-- Statement-level with transition tables: an append of a batch or a COPY of thousands of rows
-- costs one call, not one per row.
CREATE FUNCTION messages_usage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM usage_add_bytes(array_agg(conversation_id),
                                array_agg(message_bytes(content, metadata)))
        FROM added;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM usage_add_bytes(array_agg(conversation_id),
                                array_agg(-message_bytes(content, metadata)))
        FROM removed;
    ELSE
        -- One call for both versions: a patch moves each count once, by the difference.
        PERFORM usage_add_bytes(array_agg(conversation_id), array_agg(delta))
        FROM (SELECT conversation_id, message_bytes(content, metadata) AS delta FROM added
              UNION ALL
              SELECT conversation_id, -message_bytes(content, metadata) FROM removed) change;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_usage_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION messages_usage();
CREATE TRIGGER messages_usage_changed AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION messages_usage();
CREATE TRIGGER messages_usage_removed AFTER DELETE ON messages
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION messages_usage();

CREATE FUNCTION files_usage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM usage_add_bytes(array_agg(conversation_id), array_agg(size)) FROM added;
    ELSE
        PERFORM usage_add_bytes(array_agg(conversation_id), array_agg(-size)) FROM removed;
    END IF;
    RETURN NULL;
END;
$$;

-- Named to fire after files_release_blobs (triggers of one event fire in name order). Uploads
-- and deletes then lock in one order: the conversation (lock_conversation; the delete query),
-- the content (blob_lock_key), the owner's usage row.
CREATE TRIGGER files_usage_added AFTER INSERT ON files
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION files_usage();
CREATE TRIGGER files_usage_removed AFTER DELETE ON files
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION files_usage();

CREATE FUNCTION conversations_usage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO owner_usage AS u (owner, conversations, bytes)
        SELECT usage_owner(user_id, visitor_hash), count(*), sum(bytes)
        FROM added
        WHERE usage_owner(user_id, visitor_hash) IS NOT NULL
        GROUP BY 1
        ON CONFLICT (owner) DO UPDATE
        SET conversations = u.conversations + excluded.conversations,
            bytes = u.bytes + excluded.bytes;
    ELSE
        UPDATE owner_usage u
        SET conversations = u.conversations - gone.conversations, bytes = u.bytes - gone.bytes
        FROM (SELECT usage_owner(user_id, visitor_hash) AS owner, count(*) AS conversations,
                     sum(bytes) AS bytes
              FROM removed GROUP BY 1) gone
        WHERE u.owner = gone.owner;
        DELETE FROM owner_usage u
        WHERE u.conversations = 0
          AND u.owner IN (SELECT usage_owner(user_id, visitor_hash) FROM removed);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversations_usage_added AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_usage();
CREATE TRIGGER conversations_usage_removed AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_usage();

-- A conversation changing owner (a claim moves a visitor's to a user) takes its count and bytes
-- along. Per row, because a trigger with a column list cannot have transition tables, and one
-- without would run on every append (each one updates the conversation's counters).
CREATE FUNCTION conversations_usage_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE owner_usage
    SET conversations = conversations - 1, bytes = bytes - OLD.bytes
    WHERE owner = usage_owner(OLD.user_id, OLD.visitor_hash);
    DELETE FROM owner_usage
    WHERE owner = usage_owner(OLD.user_id, OLD.visitor_hash) AND conversations = 0;
    INSERT INTO owner_usage AS u (owner, conversations, bytes)
    SELECT usage_owner(NEW.user_id, NEW.visitor_hash), 1, NEW.bytes
    WHERE usage_owner(NEW.user_id, NEW.visitor_hash) IS NOT NULL
    ON CONFLICT (owner) DO UPDATE
    SET conversations = u.conversations + 1, bytes = u.bytes + excluded.bytes;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversations_usage_moved AFTER UPDATE OF user_id, visitor_hash ON conversations
    FOR EACH ROW
    WHEN (usage_owner(OLD.user_id, OLD.visitor_hash)
          IS DISTINCT FROM usage_owner(NEW.user_id, NEW.visitor_hash))
    EXECUTE FUNCTION conversations_usage_moved();
