-- Files attached to conversations, and the content-addressed chunks holding their bytes
-- (migrations/0004.files.sql). Every query addressing a conversation's files takes the caller's
-- scope as $2..$4, as in conversations.sql:
--     ($2 OR c.user_id = $3 OR c.owner = $4)
-- Every query returning a file lists the same columns, in the order of the API's FileInfo.

-- name: start_blob :val
-- A new blob to stream an upload into; it gets its SHA-256 (or is dropped for an identical
-- stored one) when the upload ends, in the same transaction.
INSERT INTO blobs (chunk_size)
VALUES ($1)
RETURNING id;

-- name: write_chunk :exec
-- Chunk $2 (0-based) of blob $1.
INSERT INTO blob_chunks (blob_id, n, data)
VALUES ($1, $2, $3);

-- name: lock_content :exec
-- Until the end of the transaction, nobody else decides whether content with SHA-256 $1 is
-- stored (see blob_lock_key in the migration).
SELECT pg_advisory_xact_lock(blob_lock_key($1));

-- name: find_blob :val
-- The stored blob with SHA-256 $1. Run under lock_content.
SELECT id FROM blobs WHERE sha256 = $1;

-- name: seal_blob :exec
-- The upload into blob $1 is complete: $2 bytes with SHA-256 $3. Run under lock_content.
UPDATE blobs SET size = $2, sha256 = $3 WHERE id = $1;

-- name: drop_blob :exec
-- Blob $1 repeats stored content (or its upload failed): its chunks go with it.
DELETE FROM blobs WHERE id = $1;

-- name: lock_conversation :val
-- Lock conversation $1 (within the scope $2..$4) for a new file and return the bytes its files
-- take already; nothing when it is missing. Concurrent uploads queue here, so the
-- per-conversation limit holds under concurrency.
SELECT coalesce((SELECT sum(f.size) FROM files f WHERE f.conversation_id = c.id), 0)::bigint
FROM conversations c
WHERE c.id = $1 AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
FOR UPDATE OF c;

-- name: insert :one
-- File $2 of conversation $1 (locked by lock_conversation): blob $3, named $4, of type $5, $6
-- bytes with SHA-256 $7; nothing when the id is taken.
INSERT INTO files AS f (conversation_id, id, blob_id, filename, content_type, size)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (conversation_id, id) DO NOTHING
RETURNING f.id, f.conversation_id, f.filename, f.content_type, f.size, $7::bytea AS sha256, f.created_at;

-- name: get :one
-- File $5 of conversation $1, if the scope $2..$4 may see the conversation.
SELECT f.id, f.conversation_id, f.filename, f.content_type, f.size, b.sha256, f.created_at
FROM files f
JOIN conversations c ON c.id = f.conversation_id
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = $1 AND f.id = $5
  AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea);

-- name: list :many
-- The files of conversation $1 (scope $2..$4), oldest first, strictly after the keyset cursor
-- ($5 created_at, $6 id); at most $7 rows.
SELECT f.id, f.conversation_id, f.filename, f.content_type, f.size, b.sha256, f.created_at
FROM files f
JOIN conversations c ON c.id = f.conversation_id
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = $1
  AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea)
  AND (f.created_at, f.id) > ($5, $6)
ORDER BY f.created_at, f.id
LIMIT $7;

-- name: locate_content :one
-- Where the bytes of file $2 of conversation $1 are: its blob and chunk size. The download runs
-- this again in its own snapshot, after the handler checked access with get.
SELECT b.id, b.chunk_size
FROM files f
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = $1 AND f.id = $2;

-- name: read_chunks :many
-- Chunks $2..$3 (inclusive) of blob $1, in order.
SELECT data
FROM blob_chunks
WHERE blob_id = $1 AND n BETWEEN $2 AND $3
ORDER BY n;

-- name: delete :execrows
-- Delete file $5 of conversation $1 within the scope $2..$4; the trigger files_release_blobs
-- drops its content when no other file uses it.
DELETE FROM files f
USING conversations c
WHERE f.conversation_id = $1 AND f.id = $5 AND c.id = f.conversation_id
  AND ($2::boolean OR c.user_id = $3::text OR c.owner = $4::bytea);
