-- Files attached to conversations, and the content-addressed chunks holding their bytes
-- (migrations/0004.files.sql). Every query addressing a conversation's files carries the
-- caller's scope, word for word as in conversations.sql:
--     (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
-- Every query returning a file lists the same columns, in the order of the API's FileInfo.

-- name: start_blob :val
-- A new blob to stream an upload into, in chunks of :chunk_size bytes; it gets its SHA-256 (or
-- is dropped for an identical stored one) when the upload ends, in the same transaction.
INSERT INTO blobs (chunk_size)
VALUES (:chunk_size)
RETURNING id;

-- name: write_chunk :exec
-- Chunk :n (0-based) of blob :blob_id.
INSERT INTO blob_chunks (blob_id, n, data)
VALUES (:blob_id, :n, :data);

-- name: lock_content :exec
-- Until the end of the transaction, nobody else decides whether content with SHA-256 :sha256
-- is stored (see blob_lock_key in the migration).
SELECT pg_advisory_xact_lock(blob_lock_key(:sha256));

-- name: find_blob :val
-- The stored blob with SHA-256 :sha256. Run under lock_content.
SELECT id FROM blobs WHERE sha256 = :sha256;

-- name: seal_blob :exec
-- The upload into blob :blob_id is complete: :size bytes with SHA-256 :sha256. Run under
-- lock_content.
UPDATE blobs SET size = :size, sha256 = :sha256 WHERE id = :blob_id;

-- name: drop_blob :exec
-- Blob :blob_id repeats stored content (or its upload failed): its chunks go with it.
DELETE FROM blobs WHERE id = :blob_id;

-- name: upload_target :val
-- Whether conversation :conversation_id may take an upload: true when it is within the caller's
-- scope, false when it is someone else's (refused before the body is read), nothing when it does
-- not exist (the upload creates it).
SELECT coalesce((:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea), false)
FROM conversations c
WHERE c.id = :conversation_id;

-- name: lock_conversation :one
-- Lock conversation :conversation_id (within the caller's scope) for a new file until the end of
-- the transaction; its user and whether a user or visitor owns it (its quotas apply), nothing
-- when it is missing. Concurrent uploads queue here, so the per-conversation limit holds under
-- concurrency (with conversation_bytes run after it).
SELECT c.user_id, usage_owner(c.user_id, c.visitor_hash) IS NOT NULL AS owned
FROM conversations c
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
FOR UPDATE OF c;

-- name: conversation_bytes :val
-- The bytes the files of conversation :conversation_id take. Run after lock_conversation, as a
-- statement of its own: its snapshot then sees every file committed by the uploads this one
-- queued behind (a subquery of the locking statement would not).
-- Unscoped: only under lock_conversation, which checked the scope in the same transaction.
SELECT coalesce(sum(f.size), 0)::bigint
FROM files f
WHERE f.conversation_id = :conversation_id;

-- name: insert :one
-- File :file_id of conversation :conversation_id: blob :blob_id, named :filename, of type
-- :content_type, :size bytes with SHA-256 :sha256, described by :metadata; nothing when the id
-- is taken.
-- Unscoped: only under lock_conversation, which checked the scope in the same transaction.
INSERT INTO files AS f (conversation_id, id, blob_id, filename, content_type, size, metadata)
VALUES (:conversation_id, :file_id, :blob_id, :filename, :content_type, :size, :metadata)
ON CONFLICT (conversation_id, id) DO NOTHING
RETURNING f.id, f.conversation_id, f.filename, f.content_type, f.size, :sha256::bytea AS sha256,
          f.created_at, f.metadata;

-- name: get :one
-- File :file_id of conversation :conversation_id, if the caller may see the conversation, with
-- where its bytes are: its blob and chunk size. A blob's chunks never change once sealed, so a
-- download reading them by blob id later serves exactly the bytes this row describes.
SELECT f.id, f.conversation_id, f.filename, f.content_type, f.size, b.sha256, f.created_at,
       f.metadata, b.id AS blob_id, b.chunk_size
FROM files f
JOIN conversations c ON c.id = f.conversation_id
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = :conversation_id AND f.id = :file_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);

-- name: list :many
-- The files of conversation :conversation_id within the caller's scope, oldest first, strictly
-- after the keyset cursor (:after_created_at, :after_id); at most :max_rows.
SELECT f.id, f.conversation_id, f.filename, f.content_type, f.size, b.sha256, f.created_at,
       f.metadata
FROM files f
JOIN conversations c ON c.id = f.conversation_id
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
  AND (f.created_at, f.id) > (:after_created_at, :after_id)
ORDER BY f.created_at, f.id
LIMIT :max_rows;

-- name: set_metadata :one
-- Replace the metadata of file :file_id of conversation :conversation_id within the caller's
-- scope; the file as it is now, nothing when it is missing.
UPDATE files f
SET metadata = :metadata
FROM conversations c, blobs b
WHERE f.conversation_id = :conversation_id AND f.id = :file_id
  AND c.id = f.conversation_id AND b.id = f.blob_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
RETURNING f.id, f.conversation_id, f.filename, f.content_type, f.size, b.sha256, f.created_at,
          f.metadata;

-- name: read_chunks :many
-- Chunks :first_chunk..:last_chunk (inclusive) of blob :blob_id, in order.
SELECT data
FROM blob_chunks
WHERE blob_id = :blob_id AND n BETWEEN :first_chunk AND :last_chunk
ORDER BY n;

-- name: delete :execrows
-- Delete file :file_id of conversation :conversation_id within the caller's scope; the trigger
-- files_release_blobs drops its content when no other file uses it. The conversation is locked
-- first, as an upload locks it before the content: a delete's triggers then lock the content,
-- then the owner's usage, in an upload's order, so the two cannot deadlock.
WITH locked AS (
    SELECT c.id
    FROM conversations c
    WHERE c.id = :conversation_id
      AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
    FOR UPDATE
)
DELETE FROM files f
USING locked  -- one row when the caller may delete, none otherwise
WHERE f.conversation_id = :conversation_id AND f.id = :file_id;
