DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION api_keys_notify_change();
DROP TABLE api_keys;
DROP INDEX conversations_owner_recent;
ALTER TABLE conversations DROP COLUMN owner;
