-- Search over messages (GET /v1/search): full-text search for words in any form ("invoices"
-- finds "invoice"), and trigram-indexed substring matching for what full-text search cannot
-- split into words: Japanese and Chinese text (written without spaces), exact identifiers
-- (ORD-2024-00042, E1234), parts of words.
-- depends: 0009.accounts

-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner without
-- superuser rights may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The words of a message, stemmed by the english configuration (which keeps numbers and
-- identifiers as they are), kept up to date by PostgreSQL on every insert and content update.
-- Only the first 100,000 characters: a tsvector holds at most 1 MB of lexemes, and content up
-- to the size limit must always be storable; the substring match still covers all of it.
-- Adding a stored generated column rewrites the table once, under an exclusive lock (40 s to
-- 3 minutes per million messages on a 2-core machine, bench/REPORT.md "Search").
ALTER TABLE messages ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, left(content, 100000))) STORED;

-- Matching words (search_vector @@ websearch_to_tsquery(...)).
CREATE INDEX messages_search_vector ON messages USING gin (search_vector);
-- Matching substrings (content ILIKE '%...%'), case-insensitively. pg_trgm takes its trigrams
-- from letters and digits; in a database whose LC_CTYPE is C (the embedded server's), letters
-- outside ASCII are not letters to it, so Japanese and Chinese substrings are found by scanning
-- the rows the other conditions leave (one owner's messages), not through this index.
CREATE INDEX messages_content_trigrams ON messages USING gin (content gin_trgm_ops);
