-- The benchmark's data set, generated inside PostgreSQL. Conversation ids are derived from a
-- number (md5('bench-' || n)::uuid) so that pgbench scripts can pick a random one with \set.

-- name: conversations :exec
-- $1 conversations of $3 messages each, spread over $2 users, most recently updated first by n.
INSERT INTO conversations (id, user_id, title, metadata, message_count, last_seq, updated_at)
SELECT md5('bench-' || n)::uuid, 'user-' || (n % $2::int), 'Conversation ' || n,
       jsonb_build_object('source', 'bench'), $3::int, $3::int, now() - make_interval(secs => n)
FROM generate_series(1, $1::int) AS n;

-- name: messages :exec
-- $4 messages for each conversation md5($3 || n) with n from $1 to $2: about 400 bytes of
-- content and two citations each, alternating user and assistant.
INSERT INTO messages (conversation_id, seq, id, role, content, metadata)
SELECT md5($3 || n)::uuid, s, gen_random_uuid(),
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       left(repeat('message ' || s || ' of conversation ' || n || ': ' || md5(n || '/' || s), 12), 400),
       jsonb_build_object('citations', jsonb_build_array(
           jsonb_build_object('url', 'https://example.com/doc/' || s, 'title', 'Source ' || s),
           jsonb_build_object('url', 'https://example.com/ref/' || n, 'title', 'Reference ' || n)))
FROM generate_series($1::int, $2::int) AS n, generate_series(1, $4::int) AS s;

-- name: growing :exec
-- One conversation of $1 messages, id md5('grow-' || $1), for the history-length workload.
INSERT INTO conversations (id, user_id, title, message_count, last_seq)
VALUES (md5('grow-' || $1::int)::uuid, 'user-grow', 'Grows to ' || $1::int, $1::int, $1::int);
