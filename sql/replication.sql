-- Where the primary's write-ahead log is, and how far a replica has replayed it: consistency
-- tokens and read routing (service/history/replicas.py).

-- name: write_position :val
-- Where the primary's WAL ends now (its insert position, not its flush position: with
-- synchronous_commit off a commit returns before it is flushed). Read after a commit, it is at
-- or past that commit's record, so a replica that has replayed this far shows the commit.
SELECT pg_current_wal_insert_lsn();

-- name: replay_position :val
-- How far this standby has replayed its primary's WAL; NULL on a server that is not a standby.
SELECT pg_last_wal_replay_lsn();

-- name: replay_lag_seconds :val
-- How many seconds this standby's replay is behind: 0 when it has replayed all it received,
-- else the age of the last transaction it replayed; NULL on a server that is not a standby.
SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(date_part('epoch', now() - pg_last_xact_replay_timestamp()), 0)
       END::float8;
