-- Queries on the conversations table. Every query returning a conversation lists the same
-- columns, in the order of the API's Conversation object.
--
-- Ownership lives in the WHERE clause. Every query addressing one conversation takes the
-- caller's scope and keeps only rows matching, word for word (tests/unit/test_query_registry.py
-- checks it):
--     (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
-- caller_trusted: an API key sees everything; caller_user_id: the user of a user token;
-- caller_visitor_hash: the SHA-256 of an anonymous visitor's session id. Unused parts are null,
-- so they match nothing. A query that addresses a conversation without the scope says why on a
-- line starting "Unscoped:".

-- name: insert :one
-- Create conversation :conversation_id for user :user_id or visitor :visitor_hash; returns
-- nothing when the id is taken.
-- Unscoped: creates the conversation; the caller chose its owner (Principal.new_conversation_owner).
INSERT INTO conversations (id, title, user_id, visitor_hash, metadata)
VALUES (:conversation_id, :title, :user_id, :visitor_hash, :metadata)
ON CONFLICT (id) DO NOTHING
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at,
          external_id, version;

-- name: get :one
-- Conversation :conversation_id, if the caller may see it.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);

-- name: exists :val
-- Whether conversation :conversation_id exists for the caller.
SELECT EXISTS (
    SELECT 1 FROM conversations c
    WHERE c.id = :conversation_id
      AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
);

-- name: list_recent :many
-- All conversations, newest updated first, strictly after the keyset cursor
-- (:after_updated_at, :after_id); at most :max_rows. Only for a trusted caller
-- (:caller_trusted). A backward scan of conversations_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version
FROM conversations
WHERE :caller_trusted::boolean AND (updated_at, id) < (:after_updated_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: list_recent_for_user :many
-- User :user_id's conversations, newest updated first, strictly after the keyset cursor
-- (:after_updated_at, :after_id); at most :max_rows. A backward scan of
-- conversations_user_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version
FROM conversations
WHERE user_id = :user_id AND (updated_at, id) < (:after_updated_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: list_recent_for_visitor :many
-- The conversations of the visitor whose session id hashes to :visitor_hash, like
-- list_recent_for_user. A backward scan of conversations_visitor_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version
FROM conversations
WHERE visitor_hash = :visitor_hash AND (updated_at, id) < (:after_updated_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: update :one
-- Patch conversation :conversation_id within the caller's scope: the title becomes :title when
-- :set_title is true (so a title can be cleared with null); the metadata is replaced by
-- :metadata unless it is null.
UPDATE conversations c
SET title = CASE WHEN :set_title::boolean THEN :title ELSE title END,
    metadata = coalesce(:metadata, metadata),
    updated_at = now()
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at,
          external_id, version;

-- name: delete :execrows
-- Delete conversation :conversation_id within the caller's scope; its messages go with it
-- (ON DELETE CASCADE).
DELETE FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);

-- name: create_if_missing :execrows
-- The conversation an append names comes into being on first use, owned by user :user_id or
-- visitor :visitor_hash; 1 when this created it.
-- Unscoped: creates the conversation; the append then locks it with lock_for_append, which
-- checks the scope.
INSERT INTO conversations (id, user_id, visitor_hash)
VALUES (:conversation_id, :user_id, :visitor_hash)
ON CONFLICT (id) DO NOTHING;

-- name: lock_for_append :one
-- Lock conversation :conversation_id until the end of the transaction and return the last seq
-- it assigned, the user it belongs to and whether a user or visitor owns it (its quotas apply);
-- nothing when it is missing or outside the caller's scope. Appends to one conversation queue
-- here, which keeps seq gapless and strictly increasing; the rest of the append runs under it.
SELECT last_seq, user_id, usage_owner(user_id, visitor_hash) IS NOT NULL AS owned
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
FOR UPDATE;

-- name: claim :execrows
-- Move the conversations of the visitor whose session id hashes to :visitor_hash to user
-- :user_id. A claimed conversation has no visitor any more, so claiming again moves nothing.
UPDATE conversations
SET user_id = :user_id, visitor_hash = NULL
WHERE visitor_hash = :visitor_hash;

-- name: erase_user :one
-- Delete every conversation of user :user_id with its messages (and whatever else cascades from
-- a conversation); returns how many conversations and messages went.
WITH erased AS (
    DELETE FROM conversations
    WHERE user_id = :user_id
    RETURNING message_count
)
SELECT count(*) AS conversations, coalesce(sum(message_count), 0)::bigint AS messages
FROM erased;
