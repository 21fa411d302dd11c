-- Retention (README "Retention"): the prune's lock and what a dry run counts. The prune deletes
-- with the bulk delete's batches (conversation_lists.erase_batch), which take its filters.

-- name: try_lock :val
-- Take the prune's advisory lock for this session unless another session holds it: true when
-- taken. So one worker of all instances prunes at a time; the lock goes with its session if
-- the worker dies.
SELECT pg_try_advisory_lock(hashtextextended('chatkeep.prune', 0));

-- name: unlock :exec
-- Release the prune's advisory lock taken by try_lock.
SELECT pg_advisory_unlock(hashtextextended('chatkeep.prune', 0));

-- name: prunable :one
-- What a prune would delete: the anonymous visitors' conversations last written before
-- :idle_before (none when it is null) and the conversations whose expiry is not after
-- :expired_at, with their messages and files (conversations_visitor_idle and
-- conversations_expiry find them).
-- Unscoped: the operator's prune (`chatkeep prune --dry-run`), not a caller's.
SELECT count(*) AS conversations,
       coalesce(sum(c.message_count), 0)::bigint AS messages,
       coalesce(sum((SELECT count(*) FROM files f WHERE f.conversation_id = c.id)), 0)::bigint
           AS files
FROM conversations c
WHERE (c.visitor_hash IS NOT NULL AND c.updated_at < :idle_before::timestamptz)
   OR c.expires_at <= :expired_at::timestamptz;
