-- The benchmark's data set, generated inside PostgreSQL. Conversation ids are derived from a
-- number (md5('bench-' || n)::uuid) so that pgbench scripts can pick a random one with \set.

-- name: conversations :exec
-- :conversations conversations of :messages messages each, spread over :users users, most
-- recently updated first by n.
INSERT INTO conversations (id, user_id, title, metadata, message_count, last_seq, updated_at)
SELECT md5('bench-' || n)::uuid, 'user-' || (n % :users::int), 'Conversation ' || n,
       jsonb_build_object('source', 'bench'), :messages::int, :messages::int,
       now() - make_interval(secs => n)
FROM generate_series(1, :conversations::int) AS n;

-- name: messages :exec
-- :messages messages for each conversation md5(:prefix || n) with n from :first to :last:
-- about 400 bytes of content and two citations each, alternating user and assistant.
INSERT INTO messages (conversation_id, seq, id, role, content, metadata)
SELECT md5(:prefix || n)::uuid, s, gen_random_uuid(),
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       left(repeat('message ' || s || ' of conversation ' || n || ': ' || md5(n || '/' || s), 12), 400),
       jsonb_build_object('citations', jsonb_build_array(
           jsonb_build_object('url', 'https://example.com/doc/' || s, 'title', 'Source ' || s),
           jsonb_build_object('url', 'https://example.com/ref/' || n, 'title', 'Reference ' || n)))
FROM generate_series(:first::int, :last::int) AS n, generate_series(1, :messages::int) AS s;

-- name: growing :exec
-- One conversation of :size messages, id md5('grow-' || :size), for the history-length
-- workload.
INSERT INTO conversations (id, user_id, title, message_count, last_seq)
VALUES (md5('grow-' || :size::int)::uuid, 'user-grow', 'Grows to ' || :size::int, :size::int,
        :size::int);
