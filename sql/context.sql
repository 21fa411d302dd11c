-- Context windows (GET /v1/conversations/{id}/messages?max_tokens=N, README "The context
-- window"): the newest messages of a conversation whose token counts (messages.tokens, given by
-- the client or estimated: migrations/0011.context_retention.sql) fit a budget, and the prompt
-- that may head them. Messages are listed in the columns of the API's Message object.

-- name: prompt :one
-- The latest version of prompt :name, in the columns of the API's PromptVersion, with the
-- estimate of its tokens; nothing when the prompt is retired or was never stored.
-- (Prompts belong to the deployment, not to a conversation: only trusted callers read them,
-- which service/history/context.py checks.)
SELECT v.name, v.version, v.content, v.metadata, v.created_at, estimate_tokens(v.content) AS tokens
FROM prompts p
JOIN prompt_versions v ON v.name = p.name AND v.version = p.latest_version
WHERE p.name = :name AND p.retired_at IS NULL;

-- name: window :many
-- The context window of conversation :conversation_id among its messages below seq
-- :before_seq, within the caller's scope: the system messages first, then the others, each
-- oldest first. The last column, kind, says what each row is:
--   'system'   with :include_system, every system message (the first :max_rows), found by the
--              partial index messages_system without reading the rest of the history;
--   'window'   the newest other messages (all others, without :include_system) whose tokens,
--              added to :reserved_tokens (a prompt's) and the system messages', stay within
--              :max_tokens; at most :max_rows of them, and no message once the ones before it
--              (system messages included) carry :max_bytes of content and metadata, as in the
--              history pages of messages.sql;
--   'left_out' at most one: the newest message that did not fit, so older history exists.
-- A window function cannot stop a scan by itself (a running sum over the history would read
-- all of it), so the newest 51 messages (a default page and one more) come from one backward
-- range scan of the primary key with a window sum over them, as a history page does; only when
-- all of them fit does the walk go on, recursively, one probe of the primary key per older
-- message, carrying the running sums, until the first message that does not fit. The cost
-- follows the window's length, whatever the history's: a window of up to 50 messages costs
-- what the latest 50 do. (51 is written out: with a parameter there, PostgreSQL's generic plan
-- would look costlier than it is, and every call would be planned afresh, which costs more
-- than running it.)
WITH RECURSIVE allowed AS (
    SELECT EXISTS (
        SELECT 1 FROM conversations c
        WHERE c.id = :conversation_id
          AND (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
    ) AS ok
), system AS (
    SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
           m.created_at, m.external_id, m.tokens, m.status,
           octet_length(m.content) + pg_column_size(m.metadata) AS bytes
    FROM messages m
    WHERE :include_system::boolean AND (SELECT ok FROM allowed)
      AND m.conversation_id = :conversation_id AND m.role = 'system'
      AND m.seq < :before_seq
    ORDER BY m.seq
    LIMIT :max_rows
), fixed AS MATERIALIZED (
    SELECT :reserved_tokens::bigint + coalesce(sum(tokens), 0) AS tokens,
           coalesce(sum(bytes), 0) AS bytes
    FROM system
), head AS (
    SELECT newest.*,
           row_number() OVER newer_first AS n,
           fixed.tokens + sum(newest.tokens) OVER newer_first AS running_tokens,
           fixed.bytes + sum(newest.bytes) OVER newer_first AS running_bytes
    FROM fixed, (
        SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
               m.created_at, m.external_id, m.tokens, m.status,
               octet_length(m.content) + pg_column_size(m.metadata) AS bytes
        FROM messages m
        WHERE (SELECT ok FROM allowed)
          AND m.conversation_id = :conversation_id AND m.seq < :before_seq
          AND NOT (:include_system::boolean AND m.role = 'system')
        ORDER BY m.seq DESC
        LIMIT 51
    ) newest
    WINDOW newer_first AS (ORDER BY newest.seq DESC)
), scanned AS (
    SELECT head.*,
           running_tokens <= :max_tokens::bigint AND n <= :max_rows
               AND running_bytes - bytes < :max_bytes AS fits
    FROM head
), walk AS (
    -- Beyond the scan: from its oldest message, when the scan was full and all of it fits.
    (
        SELECT id, conversation_id, seq, role, content, topic, metadata, created_at,
               external_id, tokens, status, n, running_tokens, running_bytes, fits
        FROM scanned
        WHERE n = 51 AND fits
    )
    UNION ALL
    (
        SELECT older.id, older.conversation_id, older.seq, older.role, older.content,
               older.topic, older.metadata, older.created_at, older.external_id, older.tokens,
               older.status, walk.n + 1,
               walk.running_tokens + older.tokens,
               walk.running_bytes + older.bytes,
               walk.running_tokens + older.tokens <= :max_tokens::bigint
                   AND walk.n < :max_rows AND walk.running_bytes < :max_bytes
        FROM walk
        CROSS JOIN LATERAL (
            SELECT m.id, m.conversation_id, m.seq, m.role, m.content, m.topic, m.metadata,
                   m.created_at, m.external_id, m.tokens, m.status,
                   octet_length(m.content) + pg_column_size(m.metadata) AS bytes
            FROM messages m
            WHERE m.conversation_id = :conversation_id AND m.seq < walk.seq
              AND NOT (:include_system::boolean AND m.role = 'system')
            ORDER BY m.seq DESC
            LIMIT 1
        ) older
        WHERE walk.fits
    )
), walked AS (
    SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
           tokens, status, n, fits
    FROM scanned
    UNION ALL
    SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
           tokens, status, n, fits
    FROM walk
    WHERE n > 51
)
SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id, tokens,
       status, kind
FROM (
    SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
           tokens, status, 'system' AS kind
    FROM system
    UNION ALL
    -- The sums only grow going back, so what fits is a run of the newest: the window, then
    -- the first that does not fit (the scan may have read further; those are not returned).
    SELECT id, conversation_id, seq, role, content, topic, metadata, created_at, external_id,
           tokens, status, CASE WHEN fits THEN 'window' ELSE 'left_out' END
    FROM walked
    WHERE fits OR n = (SELECT min(n) FROM walked WHERE NOT fits)
) found
ORDER BY kind <> 'system', seq;
