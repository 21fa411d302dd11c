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
-- Create conversation :conversation_id for user :user_id or visitor :visitor_hash, with the
-- application's id :external_id (or null) and expiry :expires_at (or null); returns nothing when
-- the id is taken, or the external id within that owner.
-- Unscoped: creates the conversation; the caller chose its owner (Principal.new_conversation_owner).
INSERT INTO conversations (id, title, user_id, visitor_hash, metadata, external_id, expires_at)
VALUES (:conversation_id, :title, :user_id, :visitor_hash, :metadata, :external_id, :expires_at)
ON CONFLICT DO NOTHING
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at,
          external_id, version, expires_at;

-- name: get_by_external_id_of_owner :one
-- The conversation with external id :external_id of user :user_id or visitor :visitor_hash
-- (both null: of neither): what a create that found the external id taken compares itself with.
-- One probe of conversations_external_id_owner.
-- Unscoped: the owner is the caller's own choice (Principal.new_conversation_owner).
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE external_id = :external_id
  AND coalesce(usage_owner(user_id, visitor_hash), '')
      = coalesce(usage_owner(:user_id::text, :visitor_hash::bytea), '');

-- name: find_by_external_id :many
-- The ids of the conversations with external id :external_id that the caller may see (of user
-- :user_id only, unless it is null); at most two, as two mean the name is ambiguous (an API key
-- sees every owner's). A range scan of conversations_external_id_owner.
SELECT c.id
FROM conversations c
WHERE c.external_id = :external_id
  AND (:user_id::text IS NULL OR c.user_id = :user_id::text)
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
LIMIT 2;

-- name: get :one
-- Conversation :conversation_id, if the caller may see it.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
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

-- name: update :one
-- Patch conversation :conversation_id within the caller's scope, when its version is one of
-- :if_versions (null: any): the title becomes :title when :set_title is true (so a title can be
-- cleared with null); the metadata, unless :metadata is null, is replaced by it, or when :merge
-- is true has it applied as an RFC 7396 merge patch (jsonb_merge_patch, in this one statement,
-- so concurrent patches of different keys all survive); the expiry becomes :expires_at when
-- :set_expires_at is true. The last column, metadata_bytes, is the
-- size of the resulting metadata, checked against the limit before commit.
UPDATE conversations c
SET title = CASE WHEN :set_title::boolean THEN :title ELSE title END,
    metadata = CASE WHEN :metadata::jsonb IS NULL THEN metadata
                    WHEN :merge::boolean THEN jsonb_merge_patch(metadata, :metadata::jsonb)
                    ELSE :metadata::jsonb END,
    expires_at = CASE WHEN :set_expires_at::boolean THEN :expires_at::timestamptz
                      ELSE expires_at END,
    updated_at = now(),
    version = version + 1
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
  AND (:if_versions::bigint[] IS NULL OR c.version = any(:if_versions::bigint[]))
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at,
          external_id, version, expires_at, octet_length(metadata::text) AS metadata_bytes;

-- name: version :val
-- The version of conversation :conversation_id, if the caller may see it: why a conditional
-- write matched nothing (missing, or at another version).
SELECT c.version
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);

-- name: delete :execrows
-- Delete conversation :conversation_id within the caller's scope when its version is one of
-- :if_versions (null: any); its messages go with it (ON DELETE CASCADE).
DELETE FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
  AND (:if_versions::bigint[] IS NULL OR c.version = any(:if_versions::bigint[]));

-- name: create_if_missing :execrows
-- The conversation an append names comes into being on first use, owned by user :user_id or
-- visitor :visitor_hash, with external id :external_id (or null); 1 when this created it, 0
-- when the id or the owner's external id is taken (a concurrent first append: ON CONFLICT waits
-- for it to commit).
-- Unscoped: creates the conversation; the append then locks it with lock_for_append, which
-- checks the scope.
INSERT INTO conversations (id, user_id, visitor_hash, external_id)
VALUES (:conversation_id, :user_id, :visitor_hash, :external_id)
ON CONFLICT DO NOTHING;

-- name: lock_for_append :one
-- Lock conversation :conversation_id until the end of the transaction and return the last seq
-- it assigned, the user it belongs to, whether a user or visitor owns it (its quotas apply) and
-- its version (for If-Match);
-- nothing when it is missing or outside the caller's scope. Appends to one conversation queue
-- here, which keeps seq gapless and strictly increasing; the rest of the append runs under it.
SELECT last_seq, user_id, usage_owner(user_id, visitor_hash) IS NOT NULL AS owned, version
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
FOR UPDATE;

-- name: claim :one
-- Move the conversations of the visitor whose session id hashes to :visitor_hash to user
-- :user_id. A claimed conversation has no visitor any more, so claiming again moves nothing.
-- External ids are unique per owner: when the user has one the visitor also uses, nothing moves
-- and clashing lists them (moving the rest would leave the claim half done).
WITH clashing AS (
    SELECT visitor.external_id
    FROM conversations visitor
    JOIN conversations mine ON mine.external_id = visitor.external_id AND mine.user_id = :user_id
    WHERE visitor.visitor_hash = :visitor_hash
), moved AS (
    UPDATE conversations
    SET user_id = :user_id, visitor_hash = NULL
    WHERE visitor_hash = :visitor_hash AND NOT EXISTS (SELECT 1 FROM clashing)
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS moved,
       coalesce((SELECT array_agg(external_id ORDER BY external_id) FROM clashing), '{}')
           AS clashing;

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

-- name: revision :one
-- The version and creation time of conversation :conversation_id, if the caller may see it:
-- what a history page shows is named by them (a conversation deleted and created again under
-- the same id starts at version 1 again, with another creation time). One primary-key probe.
SELECT c.version, c.created_at
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);
