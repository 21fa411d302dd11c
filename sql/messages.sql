-- Queries on the messages table. Every query returning a message lists the same columns, in the
-- order of the API's Message object.
--
-- Ownership: queries take the caller's scope as $2..$4, as in conversations.sql, and check the
-- conversation in an uncorrelated EXISTS. PostgreSQL evaluates it once (an InitPlan), not once
-- per message as a join would, and a conversation outside the scope yields no rows at all.
-- find_by_ids and append_batch take no scope: they run only inside an append's transaction,
-- after conversations.lock_for_append has checked the scope and locked the conversation.

-- name: page_backward :many
-- The newest $7 messages of conversation $1 with $5 < seq < $6, newest first:
-- one backward range scan of the primary key.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
    )
  AND m.conversation_id = $1 AND m.seq > $5 AND m.seq < $6
ORDER BY m.seq DESC
LIMIT $7;

-- name: page_forward :many
-- The oldest $7 messages of conversation $1 with $5 < seq < $6, oldest first.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
    )
  AND m.conversation_id = $1 AND m.seq > $5 AND m.seq < $6
ORDER BY m.seq ASC
LIMIT $7;

-- name: topic_page_backward :many
-- Like page_backward, within topic $8 (a range scan of messages_topic_seq).
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
    )
  AND m.conversation_id = $1 AND m.topic = $8 AND m.seq > $5 AND m.seq < $6
ORDER BY m.seq DESC
LIMIT $7;

-- name: topic_page_forward :many
-- Like page_forward, within topic $8.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
    )
  AND m.conversation_id = $1 AND m.topic = $8 AND m.seq > $5 AND m.seq < $6
ORDER BY m.seq ASC
LIMIT $7;

-- name: get :one
-- Message $5 of conversation $1, within the scope $2..$4.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
    )
  AND m.conversation_id = $1 AND m.id = $5;

-- name: find_by_ids :many
-- The messages of conversation $1 whose ids are in $2: the ones a retried append already stored.
-- Only under lock_for_append (see the top of this file).
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at
FROM messages
WHERE conversation_id = $1 AND id = any($2::uuid[]);

-- name: append_batch :many
-- Append a batch to conversation $1, whose last seq is $2 (read under lock_for_append in the same
-- transaction, which also checked the scope): the batch's rows get seq $2+1, $2+2, ... in array
-- order, and the conversation's counters move in the same statement. Arrays $3..$7 are the
-- batch's columns.
WITH inserted AS (
    INSERT INTO messages (conversation_id, seq, id, role, content, topic, metadata)
    SELECT $1, $2 + batch.ordinal, batch.id, batch.role, batch.content, batch.topic, batch.metadata
    FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
        WITH ORDINALITY AS batch (id, role, content, topic, metadata, ordinal)
    RETURNING id, conversation_id, seq, role, content, topic, metadata, created_at
), counted AS (
    UPDATE conversations
    SET last_seq = $2 + cardinality($3::uuid[]),
        message_count = message_count + cardinality($3::uuid[]),
        updated_at = now()
    WHERE id = $1
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at
FROM inserted
ORDER BY seq;

-- name: update :one
-- Patch message $5 of conversation $1 within the scope $2..$4 (finalising a streamed reply):
-- content becomes $6 and metadata $7, each unless null; the conversation counts as updated.
WITH updated AS (
    UPDATE messages m
    SET content = coalesce($6, content),
        metadata = coalesce($7, metadata)
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
        )
      AND m.conversation_id = $1 AND m.id = $5
    RETURNING id, conversation_id, seq, role, content, topic, metadata, created_at
), touched AS (
    UPDATE conversations SET updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM updated)
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at FROM updated;

-- name: delete :val
-- Delete message $5 of conversation $1 within the scope $2..$4 and keep message_count true;
-- returns how many went (0 or 1).
WITH deleted AS (
    DELETE FROM messages m
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
        )
      AND m.conversation_id = $1 AND m.id = $5
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted), updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;

-- name: clear :val
-- Delete the messages of conversation $1 within the scope $2..$4 (only those labelled topic $5
-- unless $5 is null); returns how many went. last_seq stays, so seqs are never reused.
WITH deleted AS (
    DELETE FROM messages m
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
        )
      AND m.conversation_id = $1 AND ($5::text IS NULL OR m.topic = $5)
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted), updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;
