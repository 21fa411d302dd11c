DROP INDEX conversations_visitor_idle;
DROP INDEX conversations_expiry;
ALTER TABLE conversations DROP COLUMN expires_at;
DROP INDEX messages_system;
DROP TRIGGER messages_estimate_tokens ON messages;
DROP FUNCTION messages_estimate_tokens();
ALTER TABLE messages DROP COLUMN tokens;
DROP FUNCTION estimate_tokens(text);
