"""The store's tables, as numbered migrations.

Each migration is a list of statements; ``migrate`` applies those not yet recorded in
``schema_migrations``. Add a migration at the end; never edit a released one.
"""

from __future__ import annotations

import duckdb

__all__ = ["MIGRATIONS", "migrate", "SCHEMA_VERSION"]

MIGRATIONS: list[list[str]] = [
    # 1: the core tables
    [
        """
        CREATE TABLE invocations (
            id VARCHAR PRIMARY KEY,
            service VARCHAR NOT NULL,
            handler VARCHAR NOT NULL,
            key VARCHAR,
            status VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            modified_at TIMESTAMP NOT NULL,
            attrs VARCHAR NOT NULL
        )
        """,
        """
        CREATE TABLE journal (
            invocation_id VARCHAR NOT NULL,
            idx INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            name VARCHAR,
            payload VARCHAR,
            result VARCHAR,
            failure_code INTEGER,
            failure_message VARCHAR,
            completed BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            completed_at TIMESTAMP,
            PRIMARY KEY (invocation_id, idx)
        )
        """,
        """
        CREATE TABLE state (
            service VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            PRIMARY KEY (service, key, name)
        )
        """,
        """
        CREATE TABLE state_history (
            service VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            name VARCHAR,
            op VARCHAR NOT NULL,
            value VARCHAR,
            invocation_id VARCHAR,
            entry_index INTEGER,
            changed_at TIMESTAMP NOT NULL,
            seq BIGINT NOT NULL  -- commit order of the changes (times can tie)
        )
        """,
        """
        CREATE TABLE timers (
            invocation_id VARCHAR NOT NULL,
            entry_index INTEGER NOT NULL,
            fire_at TIMESTAMP NOT NULL,
            PRIMARY KEY (invocation_id, entry_index)
        )
        """,
        """
        CREATE TABLE awakeables (
            id VARCHAR PRIMARY KEY,
            invocation_id VARCHAR NOT NULL,
            entry_index INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL
        )
        """,
        """
        CREATE TABLE promises (
            service VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            result VARCHAR,
            failure_code INTEGER,
            failure_message VARCHAR,
            completed_at TIMESTAMP NOT NULL,
            PRIMARY KEY (service, key, name)
        )
        """,
        """
        CREATE TABLE idempotency (
            scope VARCHAR NOT NULL,
            idempotency_key VARCHAR NOT NULL,
            invocation_id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (scope, idempotency_key)
        )
        """,
        """
        CREATE VIEW invocation_details AS
        SELECT id, service, handler, key, status, created_at, modified_at,
            attrs->>'service_kind' AS service_kind,
            attrs->>'handler_kind' AS handler_kind,
            attrs->>'input' AS input,
            attrs->>'headers' AS headers,
            attrs->>'idempotency_key' AS idempotency_key,
            attrs->>'output' AS output,
            CAST(attrs->>'failure_code' AS INTEGER) AS failure_code,
            attrs->>'failure_message' AS failure_message,
            CAST(attrs->>'attempt' AS INTEGER) AS attempt,
            CAST(attrs->>'next_retry_at' AS TIMESTAMP) AS next_retry_at,
            attrs->>'last_error' AS last_error,
            attrs->>'last_error_stack' AS last_error_stack,
            attrs->>'waiting_on' AS waiting_on,
            attrs->>'parent_id' AS parent_id,
            CAST(attrs->>'parent_entry' AS INTEGER) AS parent_entry,
            attrs->>'restarted_from' AS restarted_from,
            CAST(attrs->>'scheduled_at' AS TIMESTAMP) AS scheduled_at,
            CAST(attrs->>'cancel_requested' AS BOOLEAN) AS cancel_requested,
            CAST(attrs->>'journal_length' AS INTEGER) AS journal_length,
            CAST(attrs->>'completed_at' AS TIMESTAMP) AS completed_at
        FROM invocations
        """,
    ],
    # 2: the last operation-log group that DuckDB holds (see store/oplog.py)
    [
        "CREATE TABLE oplog_applied (seq BIGINT NOT NULL)",
        "INSERT INTO oplog_applied VALUES (0)",
    ],
    # 3: acknowledged operations DuckDB refused (see store/faults.py); kept, never dropped
    [
        """
        CREATE TABLE refused_writes (
            seq BIGINT NOT NULL,  -- the operation-log group
            position INTEGER NOT NULL,  -- the operation's place in it
            invocation_id VARCHAR,
            entry_index INTEGER,
            operation VARCHAR NOT NULL,
            error VARCHAR NOT NULL,
            detail VARCHAR NOT NULL,
            refused_at TIMESTAMP NOT NULL
        )
        """,
    ],
    # failed invocations, every failed attempt, what handlers logged (see
    # docs/architecture.md: "Failures and logs")
    [
        # an invocation that ended with a failure was 'completed' before 'failed' existed
        "UPDATE invocations SET status = 'failed' "
        "WHERE status = 'completed' AND (attrs->>'failure_code') IS NOT NULL",
        """
        CREATE TABLE attempts (
            invocation_id VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,  -- the invocation's attempt count when it ended
            started_at TIMESTAMP NOT NULL,
            ended_at TIMESTAMP NOT NULL,
            error VARCHAR NOT NULL,  -- "KeyError: 'missing'"
            location VARCHAR,  -- file:line in the handler's code
            stack VARCHAR,  -- the traceback text
            outcome VARCHAR NOT NULL  -- backing-off | paused | failed
        )
        """,
        """
        CREATE TABLE logs (
            invocation_id VARCHAR NOT NULL,
            logged_at TIMESTAMP NOT NULL,
            seq BIGINT NOT NULL,  -- order within the invocation (times can tie)
            attempt INTEGER,  -- the invocation's attempt count when it was written
            stream VARCHAR NOT NULL,  -- stdout | stderr | log
            level VARCHAR,  -- a log record's level name
            message VARCHAR NOT NULL
        )
        """,
    ],
    # invocations pulled from a Restate cluster (`durable pull`): where each local copy
    # came from, and the state of its key on the cluster when pulled (kept here, apart
    # from the local state; see devtool/pulled.py)
    [
        """
        CREATE TABLE origins (
            invocation_id VARCHAR PRIMARY KEY,  -- the local, read-only copy
            cluster VARCHAR NOT NULL,  -- the Restate admin URL it was pulled from
            remote_id VARCHAR NOT NULL,  -- its id there
            remote_status VARCHAR NOT NULL,  -- its status there when pulled
            pulled_at TIMESTAMP NOT NULL,
            state VARCHAR  -- JSON object {name: value JSON text} of its key there
        )
        """,
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations; returns the schema version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    rows = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    row = rows[0] if rows else None
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"the store has schema version {current}, newer than this durable ({SCHEMA_VERSION}): "
            "upgrade durable, or use another --store"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN")
        for stmt in MIGRATIONS[version - 1]:
            con.execute(stmt)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        con.execute("COMMIT")
    return SCHEMA_VERSION
