-- Accounts kept by chatkeep (CHATKEEP_ACCOUNTS): usernames and their argon2 password hashes.

-- name: insert :val
-- Add account :username for user :user_id with :password_hash; its username, or null when the
-- username or the user id is taken already.
INSERT INTO accounts (username, user_id, password_hash)
VALUES (:username, :user_id, :password_hash)
ON CONFLICT DO NOTHING
RETURNING username;

-- name: get :one
-- Account :username: what logging in needs.
SELECT user_id, password_hash, disabled_at IS NOT NULL AS disabled
FROM accounts
WHERE username = :username;

-- name: list :many
-- Every account, oldest first, without its hash.
SELECT username, user_id, created_at, updated_at, disabled_at
FROM accounts
ORDER BY created_at, username;

-- name: set_password :execrows
-- Give account :username the password whose hash is :password_hash.
UPDATE accounts
SET password_hash = :password_hash, updated_at = now()
WHERE username = :username;

-- name: rehash :execrows
-- Replace :old_hash of account :username by :new_hash of the same password (stronger
-- parameters); nothing when the password changed in between.
UPDATE accounts
SET password_hash = :new_hash
WHERE username = :username AND password_hash = :old_hash;

-- name: set_disabled :execrows
-- Disable account :username (:disabled true; an earlier disabling keeps its time) or enable it.
UPDATE accounts
SET disabled_at = CASE WHEN :disabled::boolean THEN coalesce(disabled_at, now()) END,
    updated_at = now()
WHERE username = :username;
