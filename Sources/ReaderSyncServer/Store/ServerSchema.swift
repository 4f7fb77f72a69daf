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
        return migrator
    }
}
