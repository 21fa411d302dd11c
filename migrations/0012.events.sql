-- Live updates (GET /v1/conversations/{id}/events, GET /v1/events): a log of each conversation's
-- changes, replayed to a client that reconnects, and the notifications that wake every worker's
-- listener. Triggers write both in the transaction of the change, whatever makes it (the API,
-- the importers, a bulk delete, SQL by hand), so a client never sees an event that did not
-- commit nor misses one that did.
-- depends: 0009.accounts

-- A message being written (an assistant's reply streamed in): created 'in_progress', extended in
-- place (POST .../messages/{message_id}/append), then 'complete'.
ALTER TABLE messages ADD COLUMN status text NOT NULL DEFAULT 'complete';
ALTER TABLE messages ADD CONSTRAINT messages_status CHECK (status IN ('in_progress', 'complete'));

-- One row per change. seq is the event's id in the stream (SSE `id`): per conversation, 1, 2,
-- 3, ... gapless, and assigned in commit order, since every write holds its conversation's row
-- lock (append, message patch, delete, clear, conversation patch) when its trigger numbers the
-- events. Messages' events name the message by id and seq; the stream reads the message itself
-- (its current state) when it sends the event. Only ids: no content is copied here.
CREATE TABLE conversation_events (
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    type            text        NOT NULL,
    message_id      uuid,
    message_seq     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT conversation_events_type CHECK (type IN (
        'message.created', 'message.updated', 'message.deleted', 'conversation.updated')),
    CONSTRAINT conversation_events_message CHECK (
        (type = 'conversation.updated') = (message_id IS NULL AND message_seq IS NULL))
);

-- Kept: the newest events_keep() of each conversation (pruned as new ones come, every 100th
-- event, so the cost is one small range delete per 100 events); all of them go with their
-- conversation. A client further behind is told to reload (a `reset` event).
CREATE FUNCTION events_keep() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 1000::bigint $$;

-- What a listener routes a conversation's notification to its owner's stream by: a digest of
-- usage_owner (a user or a visitor), so a payload stays short whatever the user id holds.
CREATE FUNCTION events_owner_key(user_id text, visitor_hash bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(md5(usage_owner(user_id, visitor_hash)), '-')
$$;

-- Record changes of kinds[i] to message message_ids[i] (seq message_seqs[i]; null for a
-- conversation's own change) of conversation conversation_ids[i], numbered after the
-- conversation's last event in array order, and notify channel chatkeep_events once per
-- conversation: 'c <conversation id> <last event seq> <owner key>'. Changes of a conversation
-- deleted in this transaction (a cascade) are dropped: its deletion is the news.
CREATE FUNCTION events_record(conversation_ids uuid[], kinds text[], message_ids uuid[],
                              message_seqs bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    notified bigint;
BEGIN
    WITH change AS (
        SELECT change.*, row_number() OVER (PARTITION BY change.conversation_id
                                            ORDER BY change.ordinal) AS n
        FROM unnest(conversation_ids, kinds, message_ids, message_seqs)
            WITH ORDINALITY AS change (conversation_id, kind, message_id, message_seq, ordinal)
    ), latest AS (
        SELECT c.id, events_owner_key(c.user_id, c.visitor_hash) AS owner_key,
               coalesce((SELECT e.seq FROM conversation_events e WHERE e.conversation_id = c.id
                         ORDER BY e.seq DESC LIMIT 1), 0) AS seq
        FROM conversations c
        WHERE c.id IN (SELECT change.conversation_id FROM change)
    ), inserted AS (
        INSERT INTO conversation_events (conversation_id, seq, type, message_id, message_seq)
        SELECT change.conversation_id, latest.seq + change.n, change.kind, change.message_id,
               change.message_seq
        FROM change JOIN latest ON latest.id = change.conversation_id
        RETURNING conversation_id, seq
    ), newest AS (
        SELECT inserted.conversation_id, max(inserted.seq) AS seq, min(inserted.seq) AS first
        FROM inserted GROUP BY inserted.conversation_id
    ), pruned AS (
        DELETE FROM conversation_events e
        USING newest
        WHERE e.conversation_id = newest.conversation_id
          AND (newest.first - 1) / 100 <> newest.seq / 100
          AND e.seq <= newest.seq - events_keep()
    )
    SELECT count(pg_notify('chatkeep_events', concat_ws(' ', 'c', newest.conversation_id,
                                                        newest.seq, latest.owner_key)))
    INTO notified
    FROM newest JOIN latest ON latest.id = newest.conversation_id;
END;
$$;

CREATE FUNCTION messages_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM events_record(array_agg(conversation_id ORDER BY conversation_id, seq),
                              array_fill('message.created'::text, ARRAY[count(*)::int]),
                              array_agg(id ORDER BY conversation_id, seq),
                              array_agg(seq ORDER BY conversation_id, seq))
        FROM added HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM events_record(array_agg(conversation_id ORDER BY conversation_id, seq),
                              array_fill('message.deleted'::text, ARRAY[count(*)::int]),
                              array_agg(id ORDER BY conversation_id, seq),
                              array_agg(seq ORDER BY conversation_id, seq))
        FROM removed HAVING count(*) > 0;
    ELSE
        PERFORM events_record(ARRAY[NEW.conversation_id], ARRAY['message.updated'],
                              ARRAY[NEW.id], ARRAY[NEW.seq]);
    END IF;
    RETURN NULL;
END;
$$;

-- Statement-level with transition tables for inserts and deletes (a batch, a COPY, a clear cost
-- one call); per row for updates, which a column list and a WHEN keep to real edits of what a
-- reader sees (not, say, a backfill of another column).
CREATE TRIGGER messages_events_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION messages_events();
CREATE TRIGGER messages_events_removed AFTER DELETE ON messages
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION messages_events();
CREATE TRIGGER messages_events_changed
    AFTER UPDATE OF role, content, topic, metadata, external_id, status ON messages
    FOR EACH ROW
    WHEN ((OLD.role, OLD.content, OLD.topic, OLD.metadata, OLD.external_id, OLD.status)
          IS DISTINCT FROM (NEW.role, NEW.content, NEW.topic, NEW.metadata, NEW.external_id,
                            NEW.status))
    EXECUTE FUNCTION messages_events();

-- A conversation's title, metadata, external id or owner changed: conversation.updated in its
-- log. A changed owner (a claim) also tells both owners' streams: 'm <id> <old> <new>'.
CREATE FUNCTION conversations_events_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM events_record(ARRAY[NEW.id], ARRAY['conversation.updated'], ARRAY[NULL::uuid],
                          ARRAY[NULL::bigint]);
    IF events_owner_key(OLD.user_id, OLD.visitor_hash)
       <> events_owner_key(NEW.user_id, NEW.visitor_hash) THEN
        PERFORM pg_notify('chatkeep_events', concat_ws(' ', 'm', NEW.id,
                          events_owner_key(OLD.user_id, OLD.visitor_hash),
                          events_owner_key(NEW.user_id, NEW.visitor_hash)));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversations_events_changed
    AFTER UPDATE OF title, metadata, external_id, user_id, visitor_hash ON conversations
    FOR EACH ROW
    WHEN ((OLD.title, OLD.metadata, OLD.external_id, OLD.user_id, OLD.visitor_hash)
          IS DISTINCT FROM (NEW.title, NEW.metadata, NEW.external_id, NEW.user_id,
                            NEW.visitor_hash))
    EXECUTE FUNCTION conversations_events_changed();

-- Created ('n <id> <owner key>', for owners' streams) and deleted ('d <id> <owner key>', for
-- both streams; the log goes with the conversation, so a reconnecting client gets a 404).
CREATE FUNCTION conversations_events_created_or_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('chatkeep_events',
                          concat_ws(' ', 'n', id, events_owner_key(user_id, visitor_hash)))
        FROM added WHERE usage_owner(user_id, visitor_hash) IS NOT NULL;
    ELSE
        PERFORM pg_notify('chatkeep_events',
                          concat_ws(' ', 'd', id, events_owner_key(user_id, visitor_hash)))
        FROM removed;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversations_events_created AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_events_created_or_deleted();
CREATE TRIGGER conversations_events_deleted AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION conversations_events_created_or_deleted();
