DROP FUNCTION jsonb_merge_patch(jsonb, jsonb);
-- Messages with other roles than the core four must be deleted or renamed first.
ALTER TABLE messages DROP CONSTRAINT messages_role;
ALTER TABLE messages ADD CONSTRAINT messages_role
    CHECK (role IN ('system', 'user', 'assistant', 'tool'));
ALTER TABLE files DROP COLUMN metadata;
DROP INDEX conversations_created;
DROP INDEX conversations_visitor_created;
DROP INDEX conversations_user_created;
DROP INDEX conversations_metadata;
ALTER TABLE messages DROP COLUMN external_id;
ALTER TABLE conversations DROP COLUMN external_id;
ALTER TABLE conversations DROP COLUMN version;
