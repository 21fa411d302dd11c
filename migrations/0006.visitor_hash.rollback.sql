ALTER INDEX conversations_visitor_recent RENAME TO conversations_owner_recent;
ALTER TABLE conversations RENAME CONSTRAINT conversations_visitor_hash TO conversations_owner_hash;
ALTER TABLE conversations RENAME COLUMN visitor_hash TO owner;
