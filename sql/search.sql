-- Search over messages (GET /v1/search): ranked, keyset-paginated, with an excerpt around the
-- match. A message matches :query when its words do (search_vector @@ websearch_to_tsquery:
-- stemmed English, quotes for phrases, "or", "-" to exclude) or when its content holds :query
-- as it is, case-insensitively (:pattern, the LIKE pattern '%query%' with its wildcards
-- escaped: Japanese and Chinese text, identifiers such as ORD-2024-00042, parts of words).
--
-- Rank: 1 for the literal match, plus ts_rank of the words (normalised by the message's length,
-- below 1). The order is (rank, created_at, conversation_id, seq), all descending: ties go to
-- the newest message, and the keyset (:after_rank, :after_at, :after_conversation_id,
-- :after_seq) is one row comparison. Every page ranks all the matches of the searched
-- messages again, so it costs about what the first one does.
--
-- Whose messages: the scope predicate narrows them to the caller's own, and :user_id (a trusted
-- caller's filter) to one user's. One query serves every caller because its statements are
-- planned for their values (search.py runs it after conversation_lists.plan_for_these_values):
-- the constants fold the predicate to what applies (c.user_id = 'u', c.visitor_hash = '...', or
-- nothing), so one owner's search walks that owner's conversations and their messages by
-- primary key, and a search of everything goes through the GIN indexes of 0010.search. A
-- generic plan cannot know which, and picked per-conversation GIN scans taking 300 ms
-- (bench/REPORT.md, "Search").
--
-- The excerpt: about 200 characters around the literal match; else ts_headline's fragment,
-- its matched words between U+E000 and U+E001 (private-use characters, removed from the content
-- first, so in the result they can only be markers); service/core/snippets.py turns it into
-- the HTML-safe snippet.

-- name: messages :many
-- The matches among the messages the caller may see, of user :user_id only (unless null),
-- narrowed by conversation :conversation_id, :role, :topic, created at or after :since and
-- before :until (each filter when not null); strictly after the keyset position; at most
-- :max_rows.
WITH hits AS (
    SELECT m.conversation_id, m.seq, m.created_at,
           ((m.content ILIKE :pattern)::int
            + ts_rank(m.search_vector, websearch_to_tsquery('english', :query), 1))::float8 AS rank
    FROM conversations c
    JOIN messages m ON m.conversation_id = c.id
    WHERE (:caller_trusted::boolean OR c.user_id = :caller_user_id::text OR c.visitor_hash = :caller_visitor_hash::bytea)
      AND (:user_id::text IS NULL OR c.user_id = :user_id::text)
      AND (:conversation_id::uuid IS NULL OR c.id = :conversation_id::uuid)
      AND (m.search_vector @@ websearch_to_tsquery('english', :query) OR m.content ILIKE :pattern)
      AND (:role::text IS NULL OR m.role = :role::text)
      AND (:topic::text IS NULL OR m.topic = :topic::text)
      AND (:since::timestamptz IS NULL OR m.created_at >= :since::timestamptz)
      AND (:until::timestamptz IS NULL OR m.created_at < :until::timestamptz)
), page AS (
    SELECT conversation_id, seq, created_at, rank
    FROM hits
    WHERE (rank, created_at, conversation_id, seq)
          < (:after_rank::float8, :after_at::timestamptz, :after_conversation_id::uuid, :after_seq::bigint)
    ORDER BY rank DESC, created_at DESC, conversation_id DESC, seq DESC
    LIMIT :max_rows
)
SELECT page.conversation_id, c.title, page.seq, m.id, m.role, m.topic, m.created_at, page.rank,
       CASE WHEN strpos(lower(m.content), lower(:query)) > 0
            THEN substr(m.content, greatest(1, strpos(lower(m.content), lower(:query)) - 80),
                        char_length(:query) + 160)
            ELSE ts_headline('english',
                             translate(left(m.content, 20000), U&'\E000\E001', '  '),
                             websearch_to_tsquery('english', :query),
                             U&'StartSel=\E000, StopSel=\E001, MinWords=15, MaxWords=35')
       END AS excerpt
FROM page
JOIN messages m ON m.conversation_id = page.conversation_id AND m.seq = page.seq
JOIN conversations c ON c.id = page.conversation_id
ORDER BY page.rank DESC, page.created_at DESC, page.conversation_id DESC, page.seq DESC;
