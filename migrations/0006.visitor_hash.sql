-- Names that say what they hold: an anonymous visitor's conversations carry the SHA-256 of its
-- session id, so the column is visitor_hash (it was called owner). Renames touch the catalog
-- only: no table rewrite, no long lock.
-- depends: 0005.prompts

ALTER TABLE conversations RENAME COLUMN owner TO visitor_hash;
ALTER TABLE conversations RENAME CONSTRAINT conversations_owner_hash TO conversations_visitor_hash;
ALTER INDEX conversations_owner_recent RENAME TO conversations_visitor_recent;
