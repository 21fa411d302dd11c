-- Messages: append-only history per conversation, ordered by a gapless per-conversation seq.
-- depends: 0001.conversations

CREATE TABLE messages (
    -- Leading key column: a distributed PostgreSQL can shard messages with their conversation.
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    id              uuid        NOT NULL,
    role            text        NOT NULL,
    content         text        NOT NULL,
    -- Optional label partitioning one conversation (e.g. a book chapter).
    topic           text,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Latest N is one backward range scan of this key, whatever the history length.
    PRIMARY KEY (conversation_id, seq),
    -- Client-supplied ids make retries idempotent.
    CONSTRAINT messages_id_unique UNIQUE (conversation_id, id),
    CONSTRAINT messages_role CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    CONSTRAINT messages_seq_positive CHECK (seq > 0),
    CONSTRAINT messages_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- History of one topic within a conversation, in seq order.
CREATE INDEX messages_topic_seq ON messages (conversation_id, topic, seq)
    WHERE topic IS NOT NULL;
