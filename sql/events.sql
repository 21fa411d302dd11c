-- Live updates (service/history/live.py): the event log of migrations/0012.events.sql, and the
-- rows its events name, read once per worker for all of the worker's subscribers.
--
-- Reads for subscribers run unscoped: each subscriber's access was checked when its stream
-- opened (position, with the caller's scope), and a worker reads a conversation's new events
-- once for all its subscribers, whoever they are.

-- name: position :one
-- The seq of the newest event of conversation :conversation_id (0: none yet), if the caller may
-- see the conversation; nothing otherwise.
SELECT coalesce((SELECT e.seq FROM conversation_events e WHERE e.conversation_id = c.id
                 ORDER BY e.seq DESC LIMIT 1), 0) AS seq
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);

-- name: after :many
-- Up to :max_rows events of conversation :conversation_id after seq :after_seq, oldest first,
-- each with what it names as it is now: the message (message.created and message.updated; its
-- columns null when it is gone since) or the conversation (conversation.updated). The message's
-- columns are a Message's, in its order, and so are the conversation's.
-- Unscoped: read for subscribers whose scope was checked when their streams opened (top of file).
SELECT e.seq AS event_seq, e.type AS event_type, e.message_id AS event_message_id,
       e.message_seq AS event_message_seq,
       m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at,
       m.external_id, m.tokens, m.status,
       c.id AS c_id, c.title AS c_title, c.user_id AS c_user_id, c.metadata AS c_metadata,
       c.message_count AS c_message_count, c.created_at AS c_created_at,
       c.updated_at AS c_updated_at, c.external_id AS c_external_id, c.version AS c_version,
       c.expires_at AS c_expires_at
FROM conversation_events e
LEFT JOIN messages m
       ON e.type IN ('message.created', 'message.updated')
      AND m.conversation_id = e.conversation_id AND m.seq = e.message_seq
LEFT JOIN conversations c
       ON e.type = 'conversation.updated' AND c.id = e.conversation_id
WHERE e.conversation_id = :conversation_id AND e.seq > :after_seq
ORDER BY e.seq
LIMIT :max_rows;

-- name: owned_conversation :one
-- Conversation :conversation_id if it belongs to the owner whose key (events_owner_key) is
-- :owner_key: what an owner's stream sends when one of its conversations changes.
-- Unscoped: :owner_key is the subscriber's own, taken from its credentials when its stream opened.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at, external_id,
       version, expires_at
FROM conversations c
WHERE c.id = :conversation_id AND events_owner_key(c.user_id, c.visitor_hash) = :owner_key;

-- name: append_content :one
-- Add :content to the end of message :message_id of conversation :conversation_id within the
-- caller's scope while it is in progress (a streamed reply), and make its status :status unless
-- null; its token count becomes :tokens, or the estimate of the new content. The conversation
-- counts as updated. Columns: the message as it is now (a Message), whether it was in progress
-- (nothing changed when not), and how many bytes it grew by (for its owner's quota). The message
-- is locked before it is read, as in messages.update.
WITH old AS (
    SELECT m.conversation_id, m.seq, m.status, message_bytes(m.content, m.metadata) AS bytes
    FROM messages m
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = :conversation_id
              AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
        )
      AND m.conversation_id = :conversation_id AND m.id = :message_id
    FOR UPDATE
), updated AS (
    UPDATE messages m
    SET content = m.content || :content::text,
        status = coalesce(:status::text, m.status),
        tokens = coalesce(:tokens::integer, estimate_tokens(m.content || :content::text))
    FROM old
    WHERE m.conversation_id = :conversation_id AND m.seq = old.seq
      AND old.status = 'in_progress'
    RETURNING m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
              m.created_at, m.external_id, m.tokens, m.status,
              message_bytes(m.content, m.metadata) - old.bytes AS grown
), touched AS (
    UPDATE conversations SET updated_at = now(), version = version + 1
    WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM updated)
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id, tokens,
       status, true AS appended, grown
FROM updated
UNION ALL
-- Not in progress: as it is (the statement sees the rows as they were before its own changes).
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at,
       m.external_id, m.tokens, m.status, false, 0
FROM old
JOIN messages m ON m.conversation_id = :conversation_id AND m.seq = old.seq
WHERE old.status <> 'in_progress';
