-- What the apps moving onto chatkeep need: a version per conversation (ETag, If-Match), their
-- own ids (external_id) on conversations and messages, metadata filters and sorting by creation,
-- metadata on files, and the roles their stores use.
-- depends: 0007.usage

-- Bumped by every write that changes what a conversation's reads return (its title, metadata or
-- messages): its ETag, and the If-Match a conditional write compares.
ALTER TABLE conversations ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE conversations ADD CONSTRAINT conversations_version CHECK (version > 0);

-- The application's own id of a conversation (e.g. the session id of the store it came from),
-- unique within its owner: a user, an anonymous visitor, or none (conversations an API key made
-- for no user). Leading external_id: "ext:{id}" lookups are one probe of this index.
ALTER TABLE conversations ADD COLUMN external_id text;
ALTER TABLE conversations ADD CONSTRAINT conversations_external_id
    CHECK (length(external_id) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX conversations_external_id_owner
    ON conversations (external_id, coalesce(usage_owner(user_id, visitor_hash), ''))
    WHERE external_id IS NOT NULL;

-- The application's own id of a message, unique within its conversation.
ALTER TABLE messages ADD COLUMN external_id text;
ALTER TABLE messages ADD CONSTRAINT messages_external_id
    CHECK (length(external_id) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX messages_external_id
    ON messages (conversation_id, external_id) WHERE external_id IS NOT NULL;

-- Listing by metadata containment (metadata @> '{"form_id": "f1"}').
CREATE INDEX conversations_metadata ON conversations USING gin (metadata jsonb_path_ops);

-- Listings newest created first, keyset-paginated on (created_at, id), as conversations_*recent
-- serve newest updated first.
CREATE INDEX conversations_user_created ON conversations (user_id, created_at, id)
    WHERE user_id IS NOT NULL;
CREATE INDEX conversations_visitor_created ON conversations (visitor_hash, created_at, id)
    WHERE visitor_hash IS NOT NULL;
CREATE INDEX conversations_created ON conversations (created_at, id);

-- A small JSON object per file (e.g. which form field it fills).
ALTER TABLE files ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
ALTER TABLE files ADD CONSTRAINT files_metadata_object CHECK (jsonb_typeof(metadata) = 'object');

-- Any short lowercase role name the application uses; system, user, assistant and tool remain
-- the documented core. The same rule as ROLE_PATTERN in service/core/schemas.py.
ALTER TABLE messages DROP CONSTRAINT messages_role;
ALTER TABLE messages ADD CONSTRAINT messages_role CHECK (role ~ '^[a-z][a-z0-9_-]{0,31}$');

-- RFC 7396 JSON merge patch: the patch's members set keys of target (recursively for objects),
-- its nulls remove them, everything else in target stays. One statement applies it, so two
-- concurrent patches of different keys both survive.
CREATE FUNCTION jsonb_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb;
    member record;
BEGIN
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    result := CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END;
    FOR member IN SELECT key, value FROM jsonb_each(patch) LOOP
        IF jsonb_typeof(member.value) = 'null' THEN
            result := result - member.key;
        ELSE
            result := jsonb_set(result, ARRAY[member.key],
                                jsonb_merge_patch(result -> member.key, member.value));
        END IF;
    END LOOP;
    RETURN result;
END;
$$;
