-- Imports and exports (chatkeep import ..., chatkeep export). Bulk rows arrive by COPY, not by
-- these queries: an import COPYs into
--     conversations (id, user_id, visitor_hash, title, metadata, message_count, last_seq,
--                    created_at, updated_at, external_id, version, expires_at)
--     messages (conversation_id, seq, id, role, content, topic, metadata, created_at,
--               external_id, tokens)
-- (a null tokens gets the estimate: the trigger messages_estimate_tokens, migration 0011)
-- only conversations that existing_conversations did not find, without the external ids
-- taken_external_ids finds taken (service/store/transfer.py).

-- name: existing_conversations :many
-- Which of the conversations :conversation_ids exist already (an import skips them: it is
-- idempotent).
-- Unscoped: the import is the operator's (the CLI), not a caller's.
SELECT id FROM conversations WHERE id = ANY(:conversation_ids::uuid[]);

-- name: taken_external_ids :many
-- Which of the conversations :conversation_ids, about to be imported with external ids
-- :external_ids and owners :user_ids / :visitor_hashes (the arrays' same positions), cannot
-- have their external id: another conversation of the same owner has it, stored or at an
-- earlier position. The owner is the one the unique index conversations_external_id_owner
-- (migrations/0008.app_needs.sql) compares.
-- Unscoped: the import is the operator's (the CLI), not a caller's.
SELECT n.id
FROM (
    SELECT id, external_id, coalesce(usage_owner(user_id, visitor_hash), '') AS owner,
           row_number() OVER (
               PARTITION BY external_id, coalesce(usage_owner(user_id, visitor_hash), '')
               ORDER BY position) AS nth
    FROM unnest(:conversation_ids::uuid[], :external_ids::text[], :user_ids::text[],
                :visitor_hashes::bytea[]) WITH ORDINALITY
         AS n (id, external_id, user_id, visitor_hash, position)
) n
WHERE n.nth > 1
   OR EXISTS (
       SELECT 1 FROM conversations c
       WHERE c.external_id = n.external_id
         AND coalesce(usage_owner(c.user_id, c.visitor_hash), '') = n.owner
         AND c.id <> n.id);

-- name: checksums :many
-- For each of the conversations :conversation_ids that exists: its message rows and a checksum
-- of them, the MD5 of (id, seq, role, content, topic) of every message in seq order, in the
-- form service/transfer/checksum.py computes from the source.
-- Unscoped: the import is the operator's (the CLI), not a caller's.
SELECT c.id, m.messages, coalesce(m.checksum, md5('')) AS checksum
FROM conversations c
CROSS JOIN LATERAL (
    SELECT count(*) AS messages,
           md5(string_agg(
               concat_ws(E'\x1f', id::text, seq::text, role,
                         length(content)::text || ':' || content, coalesce(topic, '')),
               E'\x1e' ORDER BY seq)) AS checksum
    FROM messages
    WHERE conversation_id = c.id
) m
WHERE c.id = ANY(:conversation_ids::uuid[]);

-- name: export_conversations :many
-- Conversations to export, by id: all, user :user_id's (when not null), or only
-- :conversation_id (when not null).
-- Unscoped: the export is the operator's (the CLI), not a caller's.
SELECT id, user_id, visitor_hash, title, metadata, message_count, last_seq, created_at,
       updated_at, external_id, version, expires_at
FROM conversations
WHERE (:user_id::text IS NULL OR user_id = :user_id)
  AND (:conversation_id::uuid IS NULL OR id = :conversation_id)
ORDER BY id;

-- name: export_messages :many
-- Every message of conversation :conversation_id, in seq order.
-- Unscoped: the export is the operator's (the CLI), not a caller's.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
       tokens
FROM messages
WHERE conversation_id = :conversation_id
ORDER BY seq;

-- name: export_files :many
-- Every file of conversation :conversation_id, oldest first (as the API lists them), with the
-- blob holding its bytes.
-- Unscoped: the export is the operator's (the CLI), not a caller's.
SELECT f.conversation_id, f.id, f.filename, f.content_type, f.size, b.sha256, f.created_at,
       f.metadata, f.blob_id
FROM files f
JOIN blobs b ON b.id = f.blob_id
WHERE f.conversation_id = :conversation_id
ORDER BY f.created_at, f.id;

-- name: export_chunks :many
-- The chunks of blob :blob_id in order, read through a cursor a few at a time.
SELECT data
FROM blob_chunks
WHERE blob_id = :blob_id
ORDER BY n;

-- name: export_prompt_versions :many
-- Every version of every prompt (retired ones flagged), by name and version.
SELECT v.name, v.version, v.content, v.metadata, v.created_at, p.retired_at IS NOT NULL AS retired
FROM prompt_versions v
JOIN prompts p ON p.name = v.name
ORDER BY v.name, v.version;

-- name: import_prompt :exec
-- Prompt :name as an export had it: latest version :version, retired when :retired. An
-- existing prompt keeps its newer versions.
INSERT INTO prompts AS p (name, latest_version, retired_at)
VALUES (:name, :version, CASE WHEN :retired::boolean THEN now() END)
ON CONFLICT (name) DO UPDATE
SET latest_version = greatest(p.latest_version, excluded.latest_version);

-- name: import_prompt_version :execrows
-- Version :version of prompt :name exactly as exported; nothing when that version exists
-- already.
INSERT INTO prompt_versions (name, version, content, metadata, created_at)
VALUES (:name, :version, :content, :metadata, :created_at)
ON CONFLICT (name, version) DO NOTHING;

-- name: restore_file :exec
-- File :file_id of conversation :conversation_id was created at :created_at and has metadata
-- :metadata, as an export says; the import stored it (through the upload operation, which
-- stamps now() and no metadata) in this transaction.
-- Unscoped: the import is the operator's (the CLI), not a caller's.
UPDATE files
SET created_at = :created_at, metadata = :metadata
WHERE conversation_id = :conversation_id AND id = :file_id;
