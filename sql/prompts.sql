-- Named system prompts and their immutable versions (migrations/0005.prompts.sql). Every query
-- returning a version lists the same columns, in the order of the API's PromptVersion.

-- name: lock_name :exec
-- Until the end of the transaction, nobody else writes a version of prompt :name. A row lock
-- cannot do this for a prompt that does not exist yet: two first PUTs would both see none.
SELECT pg_advisory_xact_lock(hashtextextended('chatkeep.prompt:' || :name::text, 0));

-- name: lock_latest :one
-- The latest version of prompt :name, with the prompt locked until the end of the transaction
-- so concurrent PUTs number their versions one after the other; nothing for a new prompt. The
-- last column says whether the prompt is retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at, p.retired_at IS NOT NULL
FROM prompts p
JOIN prompt_versions v ON v.name = p.name AND v.version = p.latest_version
WHERE p.name = :name
FOR UPDATE OF p;

-- name: bump :val
-- Make room for the next version of prompt :name (creating the prompt, or bringing a retired
-- one back) and return its number.
INSERT INTO prompts AS p (name, latest_version)
VALUES (:name, 1)
ON CONFLICT (name) DO UPDATE
SET latest_version = p.latest_version + 1, retired_at = NULL, updated_at = now()
RETURNING latest_version;

-- name: insert_version :one
-- Version :version of prompt :name.
INSERT INTO prompt_versions (name, version, content, metadata)
VALUES (:name, :version, :content, :metadata)
RETURNING name, version, content, metadata, created_at;

-- name: get_version :one
-- Version :version of prompt :name, or its latest when :version is null; nothing when retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at
FROM prompts p
JOIN prompt_versions v ON v.name = p.name AND v.version = coalesce(:version, p.latest_version)
WHERE p.name = :name AND p.retired_at IS NULL;

-- name: versions :many
-- Versions of prompt :name below :before_version, newest first, at most :max_rows; nothing
-- when retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at
FROM prompts p
JOIN prompt_versions v ON v.name = p.name
WHERE p.name = :name AND p.retired_at IS NULL AND v.version < :before_version
ORDER BY v.version DESC
LIMIT :max_rows;

-- name: list :many
-- Prompts in use (not retired), by name, strictly after name :after_name, at most :max_rows.
SELECT name, latest_version, created_at, updated_at
FROM prompts
WHERE retired_at IS NULL AND name > :after_name
ORDER BY name
LIMIT :max_rows;

-- name: retire :execrows
-- Retire prompt :name: hidden from reads and listings, its versions kept.
UPDATE prompts
SET retired_at = now(), updated_at = now()
WHERE name = :name AND retired_at IS NULL;
