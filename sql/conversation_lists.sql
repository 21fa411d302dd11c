-- Conversations found, counted and deleted in bulk: the listings (newest updated or newest
-- created first, keyset-paginated), their counts, and the batches of a bulk delete. Every query
-- returning conversations lists the columns in the order of the API's Conversation object.
--
-- Whose conversations: a query per subject (all of them, for a trusted caller; one user's; one
-- visitor's), each served by its own index. The metadata filter (:metadata, a JSON object the
-- rows must contain) is a nullable parameter in the user's and the visitor's queries: one
-- owner's conversations are few, so any plan is cheap. Over all conversations it is a query of
-- its own (matching_*, count_matching): with a nullable filter there, PostgreSQL's cached
-- generic plan cannot use the GIN index conversations_metadata, and a prepared statement falls
-- back to that plan after a few calls; a filter that is always given keeps the index usable.
-- Both orders walk (time, id) keysets strictly after the cursor's position (:after_at, :after_id).

-- name: by_updated :many
-- All conversations, newest updated first; at most :max_rows. Only for a trusted caller
-- (:caller_trusted). A backward scan of conversations_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE :caller_trusted::boolean AND (updated_at, id) < (:after_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: by_created :many
-- All conversations, newest created first, like by_updated. A backward scan of
-- conversations_created.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE :caller_trusted::boolean AND (created_at, id) < (:after_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :max_rows;

-- name: matching_by_updated :many
-- All conversations whose metadata contains :metadata, newest updated first, like by_updated.
-- The GIN index conversations_metadata finds them when they are few, conversations_recent
-- when they are many.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE :caller_trusted::boolean AND metadata @> :metadata::jsonb
  AND (updated_at, id) < (:after_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: matching_by_created :many
-- All conversations whose metadata contains :metadata, newest created first, like by_created.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE :caller_trusted::boolean AND metadata @> :metadata::jsonb
  AND (created_at, id) < (:after_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :max_rows;

-- name: for_user_by_updated :many
-- User :user_id's conversations (those whose metadata contains :metadata, unless it is null),
-- newest updated first; at most :max_rows. conversations_user_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE user_id = :user_id AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb)
  AND (updated_at, id) < (:after_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: for_user_by_created :many
-- User :user_id's conversations, newest created first, like for_user_by_updated.
-- conversations_user_created.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE user_id = :user_id AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb)
  AND (created_at, id) < (:after_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :max_rows;

-- name: for_visitor_by_updated :many
-- The conversations of the visitor whose session id hashes to :visitor_hash, like
-- for_user_by_updated. conversations_visitor_recent.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE visitor_hash = :visitor_hash AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb)
  AND (updated_at, id) < (:after_at, :after_id)
ORDER BY updated_at DESC, id DESC
LIMIT :max_rows;

-- name: for_visitor_by_created :many
-- The visitor's conversations, newest created first. conversations_visitor_created.
SELECT id, title, user_id, metadata, message_count, created_at, updated_at,
       external_id, version, expires_at
FROM conversations
WHERE visitor_hash = :visitor_hash AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb)
  AND (created_at, id) < (:after_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT :max_rows;

-- name: count :val
-- How many conversations there are. Only for a trusted caller (:caller_trusted).
SELECT count(*) FROM conversations WHERE :caller_trusted::boolean;

-- name: count_matching :val
-- How many conversations' metadata contains :metadata (conversations_metadata). Only for a
-- trusted caller (:caller_trusted).
SELECT count(*) FROM conversations WHERE :caller_trusted::boolean AND metadata @> :metadata::jsonb;

-- name: count_for_user :val
-- How many conversations user :user_id has (whose metadata contains :metadata, unless null).
SELECT count(*) FROM conversations
WHERE user_id = :user_id AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb);

-- name: count_for_visitor :val
-- How many conversations the visitor hashing to :visitor_hash has, like count_for_user.
SELECT count(*) FROM conversations
WHERE visitor_hash = :visitor_hash AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb);

-- name: plan_for_these_values :exec
-- Until the end of the transaction, plan every statement for the values it is given, never
-- with PostgreSQL's cached generic plan: the bulk delete's filters are nullable, and only a
-- plan that sees which are given uses the index that serves them (a user's, the metadata's).
SELECT set_config('plan_cache_mode', 'force_custom_plan', true);

-- name: erase_batch :one
-- One batch of a bulk delete: the first :max_rows conversations, oldest updated first, strictly
-- after (:after_at, :after_id), of user :user_id, whose metadata contains :metadata, updated
-- before :updated_before and expired at :expired_at (each filter only when not null), and only
-- anonymous visitors' when :visitors_only, are deleted with their messages and files (ON DELETE
-- CASCADE; the usage triggers of 0007 count what went). The prune (service/history/retention.py)
-- passes the last two: conversations_visitor_idle and conversations_expiry find its rows. Returns how many rows
-- the batch walked (fewer than :max_rows: the walk is over), where it stopped, and how many
-- conversations, messages and files went. The delete checks the filters again, on the rows'
-- latest versions: a conversation written to meanwhile is deleted only if it still matches.
-- Only for a trusted caller (:caller_trusted) with the erase permission.
WITH batch AS (
    SELECT id, updated_at
    FROM conversations
    WHERE :caller_trusted::boolean AND (updated_at, id) > (:after_at, :after_id)
      AND (:user_id::text IS NULL OR user_id = :user_id::text)
      AND (:metadata::jsonb IS NULL OR metadata @> :metadata::jsonb)
      AND (:updated_before::timestamptz IS NULL OR updated_at < :updated_before::timestamptz)
      AND (NOT :visitors_only::boolean OR visitor_hash IS NOT NULL)
      AND (:expired_at::timestamptz IS NULL OR expires_at <= :expired_at::timestamptz)
    ORDER BY updated_at, id
    LIMIT :max_rows
), erased AS (
    DELETE FROM conversations doomed
    USING batch
    WHERE doomed.id = batch.id
      AND (:user_id::text IS NULL OR doomed.user_id = :user_id::text)
      AND (:metadata::jsonb IS NULL OR doomed.metadata @> :metadata::jsonb)
      AND (:updated_before::timestamptz IS NULL OR doomed.updated_at < :updated_before::timestamptz)
      AND (NOT :visitors_only::boolean OR doomed.visitor_hash IS NOT NULL)
      AND (:expired_at::timestamptz IS NULL OR doomed.expires_at <= :expired_at::timestamptz)
    RETURNING doomed.message_count,
              (SELECT count(*) FROM files f WHERE f.conversation_id = doomed.id) AS files
)
SELECT walked.n AS walked, last.updated_at AS last_at, last.id AS last_id,
       (SELECT count(*) FROM erased) AS conversations,
       (SELECT coalesce(sum(message_count), 0) FROM erased)::bigint AS messages,
       (SELECT coalesce(sum(files), 0) FROM erased)::bigint AS files
FROM (SELECT count(*) AS n FROM batch) walked
LEFT JOIN LATERAL (
    SELECT updated_at, id FROM batch ORDER BY updated_at DESC, id DESC LIMIT 1
) last ON true;
