-- API keys of trusted back ends. Only a SHA-256 of each key's secret is stored.

-- name: insert :exec
-- Register key $1 named $2 with the hash $3 of its secret and permissions $4.
INSERT INTO api_keys (id, name, secret_hash, permissions)
VALUES ($1, $2, $3, $4);

-- name: get :one
-- Key $1, revoked or not: what verifying a request needs.
SELECT id, name, secret_hash, permissions, revoked_at IS NOT NULL AS revoked
FROM api_keys
WHERE id = $1;

-- name: list :many
-- Every key, oldest first, without its hash.
SELECT id, name, permissions, created_at, revoked_at
FROM api_keys
ORDER BY created_at, id;

-- name: revoke :execrows
-- Revoke key $1 for good; the api_keys_changed trigger tells every worker at once.
UPDATE api_keys
SET revoked_at = now()
WHERE id = $1 AND revoked_at IS NULL;
