-- What users and anonymous visitors own, for their quotas (migrations/0007.usage.sql: triggers
-- keep owner_usage and conversations.bytes true on every write).

-- name: of_conversation :one
-- The kind of owner of conversation :conversation_id ('user' or 'visitor'; null for a
-- conversation of neither) and that owner's conversations and bytes; nothing when the
-- conversation is missing or outside the caller's scope. Run after a write in the same
-- transaction, it sees that write's counts; the write's triggers hold the owner's row until
-- commit, so concurrent writes of one owner are checked one after another.
SELECT CASE WHEN c.user_id IS NOT NULL THEN 'user'
            WHEN c.visitor_hash IS NOT NULL THEN 'visitor' END AS owner,
       u.conversations, u.bytes
FROM conversations c
LEFT JOIN owner_usage u ON u.owner = usage_owner(c.user_id, c.visitor_hash)
WHERE c.id = :conversation_id
  AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea);
