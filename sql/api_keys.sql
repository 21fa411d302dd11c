-- API keys of trusted back ends. Only a SHA-256 of each key's secret is stored.

-- name: insert :exec
-- Register key :key_id named :name with the hash :secret_hash of its secret and :permissions.
INSERT INTO api_keys (id, name, secret_hash, permissions)
VALUES (:key_id, :name, :secret_hash, :permissions);

-- name: get :one
-- Key :key_id, revoked or not: what verifying a request needs.
SELECT id, name, secret_hash, permissions, revoked_at IS NOT NULL AS revoked
FROM api_keys
WHERE id = :key_id;

-- name: list :many
-- Every key, oldest first, without its hash.
SELECT id, name, permissions, created_at, revoked_at
FROM api_keys
ORDER BY created_at, id;

-- name: revoke :execrows
-- Revoke key :key_id for good; the api_keys_changed trigger tells every worker at once.
UPDATE api_keys
SET revoked_at = now()
WHERE id = :key_id AND revoked_at IS NULL;
