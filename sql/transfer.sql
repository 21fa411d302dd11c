-- Imports and exports (chatkeep import ..., chatkeep export). Bulk rows arrive by COPY, not by
-- these queries: an import COPYs into
--     conversations (id, user_id, owner, title, metadata, message_count, last_seq, created_at,
--                    updated_at)
--     messages (conversation_id, seq, id, role, content, topic, metadata, created_at)
-- only conversations that existing_conversations did not find (service/transfer/loader.py).

-- name: existing_conversations :many
-- Which of the conversations $1 exist already (an import skips them: it is idempotent).
SELECT id FROM conversations WHERE id = ANY($1::uuid[]);

-- name: checksums :many
-- For each of the conversations $1 that exists: its message rows and a checksum of them, the
-- MD5 of (id, seq, role, content, topic) of every message in seq order, in the form
-- service/transfer/checksum.py computes from the source.
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
WHERE c.id = ANY($1::uuid[]);

-- name: export_conversations :many
-- Conversations to export, by id: all, user $1's (when not null), or only $2 (when not null).
SELECT id, user_id, owner, title, metadata, message_count, last_seq, created_at, updated_at
FROM conversations
WHERE ($1::text IS NULL OR user_id = $1) AND ($2::uuid IS NULL OR id = $2)
ORDER BY id;

-- name: export_messages :many
-- Every message of conversation $1, in seq order.
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at
FROM messages
WHERE conversation_id = $1
ORDER BY seq;

-- name: export_prompt_versions :many
-- Every version of every prompt (retired ones flagged), by name and version.
SELECT v.name, v.version, v.content, v.metadata, v.created_at, p.retired_at IS NOT NULL AS retired
FROM prompt_versions v
JOIN prompts p ON p.name = v.name
ORDER BY v.name, v.version;

-- name: import_prompt :exec
-- Prompt $1 as an export had it: latest version $2, retired when $3. An existing prompt keeps
-- its newer versions.
INSERT INTO prompts AS p (name, latest_version, retired_at)
VALUES ($1, $2, CASE WHEN $3::boolean THEN now() END)
ON CONFLICT (name) DO UPDATE
SET latest_version = greatest(p.latest_version, excluded.latest_version);

-- name: import_prompt_version :execrows
-- Version $2 of prompt $1 exactly as exported; nothing when that version exists already.
INSERT INTO prompt_versions (name, version, content, metadata, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name, version) DO NOTHING;
