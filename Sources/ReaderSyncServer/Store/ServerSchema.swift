import GRDB

/// The server's own tables, beside the replica's in the same database. Migration identifiers start with
/// `server-` so they never collide with the core's; the core's migrator ignores them.
enum ServerSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("server-v1-accounts") { db in
            try db.execute(sql: """
                -- Accounts that may sync; a token is kept only as its SHA-256 (hex).
                CREATE TABLE server_account (
                    name TEXT PRIMARY KEY,
                    role TEXT NOT NULL CHECK (role IN ('reader', 'editor')),
                    token_sha256 TEXT NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER
                );
                """)
        }
        migrator.registerMigration("server-v2-push-quota") { db in
            try db.execute(sql: """
                -- New changes pushed per account, one row per push, kept for the per-minute limit (rows older than
                -- the window are deleted by the next push). Shared by every server process using this file.
                CREATE TABLE server_push_quota (
                    id INTEGER PRIMARY KEY,
                    account TEXT NOT NULL,
                    at INTEGER NOT NULL,                       -- milliseconds since 1970, the store's wall clock
                    changes INTEGER NOT NULL CHECK (changes >= 0)
                );
                CREATE INDEX server_push_quota_by_account ON server_push_quota (account, at);
                CREATE INDEX server_push_quota_by_time ON server_push_quota (at);
                """)
        }
        return migrator
    }
}
