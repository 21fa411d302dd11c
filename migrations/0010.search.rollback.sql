DROP INDEX messages_content_trigrams;
DROP INDEX messages_search_vector;
ALTER TABLE messages DROP COLUMN search_vector;
DROP EXTENSION IF EXISTS pg_trgm;
