-- The context window and retention (issue 16): every message carries a token count, read by
-- GET .../messages?max_tokens=N; conversations may carry an expiry, and `chatkeep prune` (and
-- the server in the background) deletes expired and idle visitors' conversations.
-- depends: 0009.accounts

-- The documented estimate of a text's tokens, for messages whose client gave none (README
-- "The context window"): one token per character of the CJK scripts (Han, kana, Hangul,
-- CJK punctuation, fullwidth forms), which tokenizers split about that finely, plus one per
-- four UTF-8 bytes (rounded up) of the rest, which is what they average on English and code.
-- Text without any multi-byte character skips the regular expression (about 15 ms for a MiB
-- of mixed text otherwise).
CREATE FUNCTION estimate_tokens(content text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN octet_length(content) = char_length(content) THEN (octet_length(content) + 3) / 4
        ELSE (SELECT (octet_length(rest) + 3) / 4 + char_length(content) - char_length(rest)
              FROM (SELECT regexp_replace(
                        content,
                        '[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]+',
                        '', 'g') AS rest) stripped)
    END
$$;

ALTER TABLE messages ADD COLUMN tokens integer;
-- The backfill changes no content or metadata: the usage trigger (0007) would only compare
-- every row's old and new sizes.
ALTER TABLE messages DISABLE TRIGGER messages_usage_changed;
UPDATE messages SET tokens = estimate_tokens(content);
ALTER TABLE messages ENABLE TRIGGER messages_usage_changed;
ALTER TABLE messages ALTER COLUMN tokens SET NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_tokens CHECK (tokens >= 0);

-- Every insert that leaves tokens out (an append without `tokens`, an import's COPY of an older
-- export) gets the estimate; the WHEN keeps the function call off rows that carry a count.
CREATE FUNCTION messages_estimate_tokens() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.tokens := estimate_tokens(NEW.content);
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_estimate_tokens BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.tokens IS NULL)
    EXECUTE FUNCTION messages_estimate_tokens();

-- The system messages a context window puts first (include_system=true), found without reading
-- the rest of a long history.
CREATE INDEX messages_system ON messages (conversation_id, seq) WHERE role = 'system';

-- When the conversation is deleted by the next prune (null: never).
ALTER TABLE conversations ADD COLUMN expires_at timestamptz;
-- The expired ones, for the prune.
CREATE INDEX conversations_expiry ON conversations (expires_at) WHERE expires_at IS NOT NULL;
-- Anonymous visitors' conversations by last write, for the prune of idle ones
-- (CHATKEEP_VISITOR_RETENTION_DAYS); a claimed conversation has no visitor (conversations.claim).
CREATE INDEX conversations_visitor_idle ON conversations (updated_at, id)
    WHERE visitor_hash IS NOT NULL;
