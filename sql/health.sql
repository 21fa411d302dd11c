-- Queries the health checks and `chatkeep check` run.

-- name: applied_migrations :many
-- Migrations yoyo has applied, oldest first.
SELECT migration_id, applied_at_utc
FROM _yoyo_migration
ORDER BY applied_at_utc, migration_id;

-- name: server_version :val
-- The server's version string.
SELECT version();

-- name: ping :val
-- One round trip that touches nothing: how long the network and the server take.
SELECT 1;
