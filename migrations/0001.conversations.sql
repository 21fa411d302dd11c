-- Conversations: one row per chat thread, holding the per-conversation message counter.
-- depends:

CREATE TABLE conversations (
    id            uuid        PRIMARY KEY,
    -- The user the conversation belongs to, if any (0003.identity adds anonymous visitors).
    user_id       text,
    title         text,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    -- Messages currently stored; drops when messages are deleted.
    message_count bigint      NOT NULL DEFAULT 0,
    -- Highest seq ever assigned; never goes back, so a seq is never reused after a delete.
    last_seq      bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT conversations_counts CHECK (message_count >= 0 AND last_seq >= message_count)
);

-- "A user's conversations, newest updated first", keyset-paginated on (updated_at, id).
CREATE INDEX conversations_user_recent ON conversations (user_id, updated_at, id)
    WHERE user_id IS NOT NULL;
-- The same listing across all users (trusted back ends).
CREATE INDEX conversations_recent ON conversations (updated_at, id);
