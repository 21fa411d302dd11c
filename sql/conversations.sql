-- Queries on the conversations table. Every query returning a conversation lists the same
-- columns, in the order of the API's Conversation object.
--
-- Ownership lives in the WHERE clause. Queries addressing one conversation take the caller's
-- scope as $2..$4 and keep only rows matching
--     ($2 OR c.user_id = $3 OR c.owner = $4)
-- $2: trusted (an API key sees everything); $3: the user of a user token; $4: the SHA-256 of an
-- anonymous visitor's session id. Unused parts are null, so they match nothing.

-- name: insert :one
-- Create conversation $1 for user $3 or visitor $4; returns nothing when the id is taken.
INSERT INTO conversations (id, title, user_id, owner, metadata)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO NOTHING
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at;

-- name: get :one
-- Conversation $1, if the scope $2..$4 may see it.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations c
WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea);

-- name: exists :val
-- Whether conversation $1 exists for the scope $2..$4.
SELECT EXISTS (
    SELECT 1 FROM conversations c
    WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
);

-- name: list_recent :many
-- All conversations, newest updated first, strictly after the keyset cursor ($2 updated_at,
-- $3 id); at most $4 rows. Only for a trusted caller ($1). A backward scan of conversations_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE $1::boolean AND (updated_at, id) < ($2, $3)
ORDER BY updated_at DESC, id DESC
LIMIT $4;

-- name: list_recent_for_user :many
-- User $1's conversations, newest updated first, strictly after the keyset cursor
-- ($2 updated_at, $3 id); at most $4 rows. A backward scan of conversations_user_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE user_id = $1 AND (updated_at, id) < ($2, $3)
ORDER BY updated_at DESC, id DESC
LIMIT $4;

-- name: list_recent_for_visitor :many
-- The conversations of the visitor whose session id hashes to $1, like list_recent_for_user.
-- A backward scan of conversations_owner_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at
FROM conversations
WHERE owner = $1 AND (updated_at, id) < ($2, $3)
ORDER BY updated_at DESC, id DESC
LIMIT $4;

-- name: update :one
-- Patch conversation $1 within the scope $2..$4: the title becomes $6 when $5 is true (so a title
-- can be cleared with null); the metadata is replaced by $7 unless $7 is null.
UPDATE conversations c
SET title = CASE WHEN $5::boolean THEN $6 ELSE title END,
    metadata = coalesce($7, metadata),
    updated_at = now()
WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
RETURNING id, title, user_id, metadata, message_count, created_at, updated_at;

-- name: delete :execrows
-- Delete conversation $1 within the scope $2..$4; its messages go with it (ON DELETE CASCADE).
DELETE FROM conversations c
WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea);

-- name: create_if_missing :exec
-- The conversation an append names comes into being on first use, owned by user $2 or visitor $3.
INSERT INTO conversations (id, user_id, owner)
VALUES ($1, $2, $3)
ON CONFLICT (id) DO NOTHING;

-- name: lock_for_append :val
-- Lock conversation $1 until the end of the transaction and return the last seq it assigned;
-- nothing when it is missing or outside the scope $2..$4. Appends to one conversation queue
-- here, which keeps seq gapless and strictly increasing; the rest of the append runs under it.
SELECT last_seq
FROM conversations c
WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
FOR UPDATE;

-- name: claim :execrows
-- Move the conversations of the visitor whose session id hashes to $2 to user $1. A claimed
-- conversation has no visitor any more, so claiming again moves nothing.
UPDATE conversations
SET user_id = $1, owner = NULL
WHERE owner = $2;

-- name: erase_user :one
-- Delete every conversation of user $1 with its messages (and whatever else cascades from a
-- conversation); returns how many conversations and messages went.
WITH erased AS (
    DELETE FROM conversations
    WHERE user_id = $1
    RETURNING message_count
)
SELECT count(*) AS conversations, coalesce(sum(message_count), 0)::bigint AS messages
FROM erased;
