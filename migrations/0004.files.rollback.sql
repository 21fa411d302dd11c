DROP TABLE files;
DROP FUNCTION files_release_blobs();
DROP FUNCTION blob_lock_key(bytea);
DROP TABLE blob_chunks;
DROP TABLE blobs;
