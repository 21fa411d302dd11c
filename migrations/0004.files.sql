-- Files attached to conversations. The bytes live in PostgreSQL (so every instance sees them and
-- a backup includes them), in chunks, stored once per distinct content (SHA-256).
-- depends: 0003.identity

-- One row per distinct content. sha256 is null only while the upload that writes it is still in
-- its transaction; nothing outside that transaction ever sees such a row.
CREATE TABLE blobs (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256     bytea       UNIQUE,
    size       bigint      NOT NULL DEFAULT 0,
    -- Bytes per chunk (the last one may be shorter): a byte range maps to chunk numbers.
    chunk_size integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT blobs_sha256 CHECK (sha256 IS NULL OR octet_length(sha256) = 32),
    CONSTRAINT blobs_size CHECK (size >= 0 AND chunk_size > 0)
);

CREATE TABLE blob_chunks (
    blob_id bigint  NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    -- 0-based position of the chunk in the content.
    n       integer NOT NULL,
    data    bytea   NOT NULL,
    PRIMARY KEY (blob_id, n),
    CONSTRAINT blob_chunks_n CHECK (n >= 0)
);
-- Uploads are often compressed already (images, PDFs): do not spend CPU compressing them again.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE files (
    -- Leading key column, as for messages: a file lives and dies with its conversation.
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    id              uuid        NOT NULL,
    -- No cascade: content still referenced can never be deleted.
    blob_id         bigint      NOT NULL REFERENCES blobs (id),
    filename        text        NOT NULL,
    content_type    text        NOT NULL,
    size            bigint      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, id),
    CONSTRAINT files_size CHECK (size >= 0),
    CONSTRAINT files_filename CHECK (length(filename) BETWEEN 1 AND 255)
);
-- "Is this content still used?" when a file goes.
CREATE INDEX files_blob ON files (blob_id);

-- The advisory lock that serialises everything deciding whether content with this SHA-256 is
-- stored: an upload looking for it (to reuse it) and a delete looking at its last reference.
CREATE FUNCTION blob_lock_key(sha256 bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ('x' || encode(substr(sha256, 1, 8), 'hex'))::bit(64)::bigint $$;

-- Whatever deletes files (the files endpoint, a conversation's cascade, erasing a user, or SQL
-- by hand) releases the content no file uses any more, so no orphaned bytes remain.
CREATE FUNCTION files_release_blobs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    released bytea;
BEGIN
    -- Sorted, so two deletes sharing content take the locks in the same order.
    FOR released IN
        SELECT b.sha256 FROM blobs b
        WHERE b.id IN (SELECT blob_id FROM released_files)
        ORDER BY b.sha256
    LOOP
        PERFORM pg_advisory_xact_lock(blob_lock_key(released));
        -- A new statement, so a fresh snapshot: it sees uploads that committed while we waited.
        DELETE FROM blobs b
        WHERE b.sha256 = released
          AND NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_id = b.id);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER files_release_blobs
    AFTER DELETE ON files
    REFERENCING OLD TABLE AS released_files
    FOR EACH STATEMENT EXECUTE FUNCTION files_release_blobs();
