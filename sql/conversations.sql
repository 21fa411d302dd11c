-- Queries on the conversations table. Every query returning a conversation lists the same
-- columns, in the order of the API's Conversation object.

-- name: insert :one
-- Create conversation $1; returns nothing when the id is already taken.
INSERT INTO conversations (id, title, user_id, metadata)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO NOTHING
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at;

-- name: get :one
-- Conversation $1.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE id = $1;

-- name: exists :val
-- Whether conversation $1 exists.
SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1);

-- name: list_recent :many
-- All conversations, newest updated first, strictly after the keyset cursor ($1 updated_at, $2 id);
-- at most $3 rows. A backward scan of conversations_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE (updated_at, id) < ($1, $2)
ORDER BY updated_at DESC, id DESC
LIMIT $3;

-- name: list_recent_for_user :many
-- User $1's conversations, newest updated first, strictly after the keyset cursor
-- ($2 updated_at, $3 id); at most $4 rows. A backward scan of conversations_user_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE user_id = $1 AND (updated_at, id) < ($2, $3)
ORDER BY updated_at DESC, id DESC
LIMIT $4;

-- name: update :one
-- Patch conversation $1: the title becomes $3 when $2 is true (so a title can be cleared with
-- null); the metadata is replaced by $4 unless $4 is null.
UPDATE conversations
SET title = CASE WHEN $2::boolean THEN $3 ELSE title END,
    metadata = coalesce($4, metadata),
    updated_at = now()
WHERE id = $1
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at;

-- name: delete :execrows
-- Delete conversation $1; its messages go with it (ON DELETE CASCADE).
DELETE FROM conversations WHERE id = $1;

-- name: create_if_missing :exec
-- The conversation an append names comes into being on first use, owned by user $2.
INSERT INTO conversations (id, user_id)
VALUES ($1, $2)
ON CONFLICT (id) DO NOTHING;

-- name: lock_for_append :val
-- Lock conversation $1 until the end of the transaction and return the last seq it assigned.
-- Appends to one conversation queue here, which keeps seq gapless and strictly increasing.
SELECT last_seq FROM conversations WHERE id = $1 FOR UPDATE;
