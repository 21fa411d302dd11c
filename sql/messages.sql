-- Queries on the messages table. Every query returning a message lists the same columns, in the
-- order of the API's Message object. Reads check the conversation in an uncorrelated EXISTS, so
-- that ownership conditions live in the same WHERE clause as the history range: PostgreSQL
-- evaluates it once (an InitPlan), not once per message as a join would.

-- name: page_backward :many
-- The newest $4 messages of conversation $1 with $2 < seq < $3, newest first:
-- one backward range scan of the primary key.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = $1)
  AND m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3
ORDER BY m.seq DESC
LIMIT $4;

-- name: page_forward :many
-- The oldest $4 messages of conversation $1 with $2 < seq < $3, oldest first.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = $1)
  AND m.conversation_id = $1 AND m.seq > $2 AND m.seq < $3
ORDER BY m.seq ASC
LIMIT $4;

-- name: topic_page_backward :many
-- Like page_backward, within topic $5 (a range scan of messages_topic_seq).
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = $1)
  AND m.conversation_id = $1 AND m.topic = $5 AND m.seq > $2 AND m.seq < $3
ORDER BY m.seq DESC
LIMIT $4;

-- name: topic_page_forward :many
-- Like page_forward, within topic $5.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = $1)
  AND m.conversation_id = $1 AND m.topic = $5 AND m.seq > $2 AND m.seq < $3
ORDER BY m.seq ASC
LIMIT $4;

-- name: get :one
-- Message $2 of conversation $1.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at
FROM messages m
WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = $1)
  AND m.conversation_id = $1 AND m.id = $2;

-- name: find_by_ids :many
-- The messages of conversation $1 whose ids are in $2: the ones a retried append already stored.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at
FROM messages
WHERE conversation_id = $1 AND id = any($2::uuid[]);

-- name: append_batch :many
-- Append a batch to conversation $1, whose last seq is $2 (read under lock_for_append in the same
-- transaction): the batch's rows get seq $2+1, $2+2, ... in array order, and the conversation's
-- counters move in the same statement. Arrays $3..$7 are the batch's columns.
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
-- Patch message $2 of conversation $1 (finalising a streamed reply): content becomes $3 and
-- metadata $4, each unless null; the conversation counts as updated.
WITH updated AS (
    UPDATE messages
    SET content = coalesce($3, content),
        metadata = coalesce($4, metadata)
    WHERE conversation_id = $1 AND id = $2
    RETURNING id, conversation_id, seq, role, content, topic, metadata, created_at
), touched AS (
    UPDATE conversations SET updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM updated)
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at FROM updated;

-- name: delete :val
-- Delete message $2 of conversation $1 and keep message_count true; returns how many went (0 or 1).
WITH deleted AS (
    DELETE FROM messages WHERE conversation_id = $1 AND id = $2
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted), updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;

-- name: clear :val
-- Delete the messages of conversation $1 (only those labelled topic $2 unless $2 is null);
-- returns how many went. last_seq stays, so seqs are never reused.
WITH deleted AS (
    DELETE FROM messages
    WHERE conversation_id = $1 AND ($2::text IS NULL OR topic = $2)
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted), updated_at = now()
    WHERE id = $1 AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;
