"""Which database errors mean "PostgreSQL is not there or not answering in time"."""

from __future__ import annotations

import asyncpg

UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection left mid-reply by a server that went away (it is closed, not reused).
    asyncpg.InternalClientError,
)
# A deadlock or serialization failure rolled the transaction back: nothing was written, the
# connection is fine, and the same request succeeds when retried.
ROLLED_BACK = (asyncpg.TransactionRollbackError,)
# What the database may answer a well-formed request with: a constraint, a value it refuses, a
# transaction to retry, or its absence.
DATABASE_ERRORS = (
    asyncpg.UniqueViolationError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    *ROLLED_BACK,
    *UNAVAILABLE,
)
