-- Named system prompts and their immutable versions (migrations/0005.prompts.sql). Every query
-- returning a version lists the same columns, in the order of the API's PromptVersion.

-- name: lock_latest :one
-- The latest version of prompt $1, with the prompt locked until the end of the transaction so
-- concurrent PUTs number their versions one after the other; nothing for a new prompt. The
-- last column says whether the prompt is retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at, p.retired_at IS NOT NULL
FROM prompts p
JOIN prompt_versions v ON v.name = p.name AND v.version = p.latest_version
WHERE p.name = $1
FOR UPDATE OF p;

-- name: bump :val
-- Make room for the next version of prompt $1 (creating the prompt, or bringing a retired one
-- back) and return its number.
INSERT INTO prompts AS p (name, latest_version)
VALUES ($1, 1)
ON CONFLICT (name) DO UPDATE
SET latest_version = p.latest_version + 1, retired_at = NULL, updated_at = now()
RETURNING latest_version;

-- name: insert_version :one
-- Version $2 of prompt $1.
INSERT INTO prompt_versions (name, version, content, metadata)
VALUES ($1, $2, $3, $4)
RETURNING name, version, content, metadata, created_at;

-- name: get_version :one
-- Version $2 of prompt $1, or its latest when $2 is null; nothing when retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at
FROM prompts p
JOIN prompt_versions v ON v.name = p.name AND v.version = coalesce($2, p.latest_version)
WHERE p.name = $1 AND p.retired_at IS NULL;

-- name: versions :many
-- Versions of prompt $1 below $2, newest first, at most $3; nothing when retired.
SELECT v.name, v.version, v.content, v.metadata, v.created_at
FROM prompts p
JOIN prompt_versions v ON v.name = p.name
WHERE p.name = $1 AND p.retired_at IS NULL AND v.version < $2
ORDER BY v.version DESC
LIMIT $3;

-- name: list :many
-- Prompts in use (not retired), by name, strictly after name $1, at most $2.
SELECT name, latest_version, created_at, updated_at
FROM prompts
WHERE retired_at IS NULL AND name > $1
ORDER BY name
LIMIT $2;

-- name: retire :execrows
-- Retire prompt $1: hidden from reads and listings, its versions kept.
UPDATE prompts
SET retired_at = now(), updated_at = now()
WHERE name = $1 AND retired_at IS NULL;
