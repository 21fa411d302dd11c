-- Queries on the messages table. Every query returning a message lists the same columns, in the
-- order of the API's Message object.
--
-- Ownership: queries carry the caller's scope, word for word as in conversations.sql, and check
-- the conversation in an uncorrelated EXISTS. PostgreSQL evaluates it once (an InitPlan), not
-- once per message as a join would, and a conversation outside the scope yields no rows at all.
-- find_stored and append_batch take no scope: they run only inside an append's transaction,
-- after conversations.lock_for_append has checked the scope and locked the conversation.
--
-- History pages are bounded twice: at most :max_rows messages, and no message starts a page
-- once the ones before it carry :max_bytes of content and metadata (running_bytes, the last
-- column, counts them; octet_length reads a stored text's size without decompressing it). So a
-- page of large messages stops early, with the message that crosses the budget last.
-- The page's conversation's version and creation time come last, read in the same snapshot
-- as the messages (two initplans, each one primary-key probe): together they name exactly
-- what the page shows, for its ETag and the page cache (service/history/cached_pages.py).

-- name: page_backward :many
-- The newest :max_rows messages of conversation :conversation_id with
-- :after_seq < seq < :before_seq, newest first, within the byte budget: one backward range
-- scan of the primary key.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status, running_bytes,
       (SELECT c.version FROM conversations c WHERE c.id = :conversation_id) AS conversation_version,
       (SELECT c.created_at FROM conversations c WHERE c.id = :conversation_id) AS conversation_created_at
FROM (
    SELECT page.*, sum(page.bytes) OVER (ORDER BY page.seq DESC) AS running_bytes
    FROM (
        SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
               m.created_at, m.external_id, m.tokens, m.status, octet_length(m.content) + pg_column_size(m.metadata) AS bytes
        FROM messages m
        WHERE EXISTS (
                SELECT 1 FROM conversations c
                WHERE c.id = :conversation_id
                  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
            )
          AND m.conversation_id = :conversation_id
          AND m.seq > :after_seq AND m.seq < :before_seq
        ORDER BY m.seq DESC
        LIMIT :max_rows
    ) page
) counted
WHERE running_bytes - bytes < :max_bytes
ORDER BY seq DESC;

-- name: page_forward :many
-- The oldest :max_rows messages of conversation :conversation_id with
-- :after_seq < seq < :before_seq, oldest first, within the byte budget.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status, running_bytes,
       (SELECT c.version FROM conversations c WHERE c.id = :conversation_id) AS conversation_version,
       (SELECT c.created_at FROM conversations c WHERE c.id = :conversation_id) AS conversation_created_at
FROM (
    SELECT page.*, sum(page.bytes) OVER (ORDER BY page.seq ASC) AS running_bytes
    FROM (
        SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
               m.created_at, m.external_id, m.tokens, m.status, octet_length(m.content) + pg_column_size(m.metadata) AS bytes
        FROM messages m
        WHERE EXISTS (
                SELECT 1 FROM conversations c
                WHERE c.id = :conversation_id
                  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
            )
          AND m.conversation_id = :conversation_id
          AND m.seq > :after_seq AND m.seq < :before_seq
        ORDER BY m.seq ASC
        LIMIT :max_rows
    ) page
) counted
WHERE running_bytes - bytes < :max_bytes
ORDER BY seq ASC;

-- name: topic_page_backward :many
-- Like page_backward, within topic :topic (a range scan of messages_topic_seq).
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status, running_bytes,
       (SELECT c.version FROM conversations c WHERE c.id = :conversation_id) AS conversation_version,
       (SELECT c.created_at FROM conversations c WHERE c.id = :conversation_id) AS conversation_created_at
FROM (
    SELECT page.*, sum(page.bytes) OVER (ORDER BY page.seq DESC) AS running_bytes
    FROM (
        SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
               m.created_at, m.external_id, m.tokens, m.status, octet_length(m.content) + pg_column_size(m.metadata) AS bytes
        FROM messages m
        WHERE EXISTS (
                SELECT 1 FROM conversations c
                WHERE c.id = :conversation_id
                  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
            )
          AND m.conversation_id = :conversation_id
      AND m.topic = :topic
          AND m.seq > :after_seq AND m.seq < :before_seq
        ORDER BY m.seq DESC
        LIMIT :max_rows
    ) page
) counted
WHERE running_bytes - bytes < :max_bytes
ORDER BY seq DESC;

-- name: topic_page_forward :many
-- Like page_forward, within topic :topic.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status, running_bytes,
       (SELECT c.version FROM conversations c WHERE c.id = :conversation_id) AS conversation_version,
       (SELECT c.created_at FROM conversations c WHERE c.id = :conversation_id) AS conversation_created_at
FROM (
    SELECT page.*, sum(page.bytes) OVER (ORDER BY page.seq ASC) AS running_bytes
    FROM (
        SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
               m.created_at, m.external_id, m.tokens, m.status, octet_length(m.content) + pg_column_size(m.metadata) AS bytes
        FROM messages m
        WHERE EXISTS (
                SELECT 1 FROM conversations c
                WHERE c.id = :conversation_id
                  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
            )
          AND m.conversation_id = :conversation_id
      AND m.topic = :topic
          AND m.seq > :after_seq AND m.seq < :before_seq
        ORDER BY m.seq ASC
        LIMIT :max_rows
    ) page
) counted
WHERE running_bytes - bytes < :max_bytes
ORDER BY seq ASC;

-- name: get :one
-- Message :message_id of conversation :conversation_id, within the caller's scope.
SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata, m.created_at,
       m.external_id, m.tokens, m.status
FROM messages m
WHERE EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = :conversation_id
          AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
    )
  AND m.conversation_id = :conversation_id AND m.id = :message_id;

-- name: find_stored :many
-- The messages of conversation :conversation_id whose ids are in :message_ids or whose
-- external ids are in :external_ids: the ones a retried append already stored.
-- Unscoped: only under lock_for_append (see the top of this file).
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status
FROM messages
WHERE conversation_id = :conversation_id
  AND (id = any(:message_ids::uuid[]) OR external_id = any(:external_ids::text[]));

-- name: append_batch :many
-- Append a batch to conversation :conversation_id, whose last seq is :last_seq: the batch's rows
-- get seq :last_seq + 1, :last_seq + 2, ... in array order, and the conversation's counters
-- move in the same statement (the version too). The arrays :ids, :roles, :contents, :topics,
-- :metadata, :external_ids, :tokens and :statuses are the batch's columns (a null token count
-- gets the estimate: the trigger messages_estimate_tokens, migrations/0011.context_retention.sql).
-- Unscoped: only under lock_for_append, which read :last_seq and checked the scope in the same
-- transaction.
WITH inserted AS (
    INSERT INTO messages (conversation_id, seq, id, role, content, topic, metadata, external_id,
                          tokens, status)
    SELECT :conversation_id, :last_seq + batch.ordinal, batch.id, batch.role, batch.content,
           batch.topic, batch.metadata, batch.external_id, batch.tokens, batch.status
    FROM unnest(:ids::uuid[], :roles::text[], :contents::text[], :topics::text[],
                :metadata::jsonb[], :external_ids::text[], :tokens::integer[], :statuses::text[])
        WITH ORDINALITY AS batch (id, role, content, topic, metadata, external_id, tokens, status,
                                  ordinal)
    RETURNING id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
              tokens, status
), counted AS (
    UPDATE conversations
    SET last_seq = :last_seq + cardinality(:ids::uuid[]),
        message_count = message_count + cardinality(:ids::uuid[]),
        updated_at = now(), version = version + 1
    WHERE id = :conversation_id
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status
FROM inserted
ORDER BY seq;

-- name: update :one
-- Patch message :message_id of conversation :conversation_id within the caller's scope
-- (finalising a streamed reply): content becomes :content and metadata :metadata, each unless
-- null, and tokens :tokens, or unless null the estimate of the new content; the conversation
-- counts as updated. The last column, grown, is how many bytes the
-- message grew by (negative when it shrank), for its owner's quota: the message is locked
-- before its size is read, so a concurrent patch cannot slip in between.
WITH old AS (
    SELECT m.conversation_id, m.seq, message_bytes(m.content, m.metadata) AS bytes
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
    SET content = coalesce(:content, m.content),
        metadata = coalesce(:metadata, m.metadata),
        tokens = coalesce(:tokens, estimate_tokens(:content), m.tokens)
    FROM old
    WHERE m.conversation_id = :conversation_id AND m.seq = old.seq
    RETURNING m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
              m.created_at, m.external_id, m.tokens, m.status,
              message_bytes(m.content, m.metadata) - old.bytes AS grown
), touched AS (
    UPDATE conversations SET updated_at = now(), version = version + 1
    WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM updated)
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens, status, grown
FROM updated;

-- name: delete :val
-- Delete message :message_id of conversation :conversation_id within the caller's scope and
-- keep message_count true; returns how many went (0 or 1).
WITH deleted AS (
    DELETE FROM messages m
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = :conversation_id
              AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
        )
      AND m.conversation_id = :conversation_id AND m.id = :message_id
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted),
        updated_at = now(), version = version + 1
    WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;

-- name: clear :val
-- Delete the messages of conversation :conversation_id within the caller's scope (only those
-- labelled :topic unless it is null); returns how many went. last_seq stays, so seqs are never
-- reused.
WITH deleted AS (
    DELETE FROM messages m
    WHERE EXISTS (
            SELECT 1 FROM conversations c
            WHERE c.id = :conversation_id
              AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
        )
      AND m.conversation_id = :conversation_id AND (:topic::text IS NULL OR m.topic = :topic)
    RETURNING 1
), counted AS (
    UPDATE conversations
    SET message_count = message_count - (SELECT count(*) FROM deleted),
        updated_at = now(), version = version + 1
    WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM deleted)
)
SELECT count(*) FROM deleted;
