import Foundation
import GRDB

/// The replica database schema: versioned migrations that only append.
///
/// `Schemas/store-schema.sql` holds the schema they produce; a test compares the two.
enum StoreSchema {
    /// `PRAGMA application_id` of a ReaderSync replica ("RSyc").
    static let applicationID: Int32 = 0x5253_7963

    /// The schema version this build writes and reads (`PRAGMA user_version`).
    static var currentVersion: Int { migrations.count }

    /// The migrations, in order. Never edit a published one: append a new one.
    static let migrations: [(id: String, body: @Sendable (Database) throws -> Void)] = [
        ("v1-core", v1),
    ]

    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for (index, migration) in migrations.enumerated() {
            migrator.registerMigration(migration.id) { db in
                try migration.body(db)
                try db.execute(sql: "PRAGMA user_version = \(index + 1)")
            }
        }
        return migrator
    }

    private static func v1(_ db: Database) throws {
        try db.execute(sql: """
            PRAGMA application_id = \(applicationID);

            -- This replica: exactly one row.
            CREATE TABLE replica (
                singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
                replica_id TEXT NOT NULL,
                account TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('device', 'server')),
                created_at INTEGER NOT NULL,
                clock INTEGER NOT NULL,
                last_seq INTEGER NOT NULL
            );

            -- Every replica this one has heard of (itself first, id 1).
            CREATE TABLE origin (
                id INTEGER PRIMARY KEY,
                replica_id TEXT NOT NULL UNIQUE,
                account TEXT NOT NULL
            );

            -- Per origin and scope (0 shared, 1 private): all changes up to seq are held or merged away.
            CREATE TABLE knowledge (
                origin_id INTEGER NOT NULL REFERENCES origin(id),
                scope INTEGER NOT NULL CHECK (scope IN (0, 1)),
                seq INTEGER NOT NULL,
                PRIMARY KEY (origin_id, scope)
            ) WITHOUT ROWID;

            -- The change log: every retained change, own or received.
            CREATE TABLE change_log (
                local_seq INTEGER PRIMARY KEY AUTOINCREMENT,
                origin_id INTEGER NOT NULL REFERENCES origin(id),
                seq INTEGER NOT NULL,
                hlc INTEGER NOT NULL,
                entity INTEGER NOT NULL CHECK (entity IN (1, 2, 3)),
                account TEXT,
                key TEXT NOT NULL,
                field TEXT NOT NULL,
                value_type INTEGER NOT NULL CHECK (value_type BETWEEN 0 AND 5),
                value,
                UNIQUE (origin_id, seq)
            );
            CREATE INDEX change_log_target ON change_log (entity, key, account);

            -- Materialized state, derived from the change log by the merge rules.
            CREATE TABLE article (
                id TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                url TEXT,
                title TEXT NOT NULL,
                byline TEXT,
                body TEXT NOT NULL,
                topics TEXT NOT NULL,
                related TEXT NOT NULL,
                published_at INTEGER,
                updated_at INTEGER,
                sort_key INTEGER NOT NULL,
                content TEXT NOT NULL
            );
            CREATE INDEX article_feed ON article (sort_key DESC, id);
            CREATE INDEX article_source ON article (source);

            CREATE TABLE comment (
                id TEXT PRIMARY KEY,
                article_id TEXT NOT NULL,
                parent_id TEXT,
                author TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                created_hlc INTEGER NOT NULL,
                edited_at INTEGER,
                deleted INTEGER NOT NULL
            );
            CREATE INDEX comment_thread ON comment (article_id, created_hlc, id);

            CREATE TABLE read_state (
                account TEXT NOT NULL,
                article_id TEXT NOT NULL,
                read_at INTEGER,
                progress REAL NOT NULL,
                saved_at INTEGER,
                PRIMARY KEY (account, article_id)
            ) WITHOUT ROWID;
            """)
    }

    /// The schema as SQL text: every table and index, sorted by name (what `Schemas/store-schema.sql` holds).
    static func dumpSQL(_ db: Database) throws -> String {
        let rows = try Row.fetchAll(db, sql: """
            SELECT type, name, sql FROM sqlite_master
            WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
            ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, name
            """)
        var out = "-- ReaderSync replica store schema, version \(currentVersion).\n"
        out += "-- Generated from the migrations (readersync schema); a test checks it matches.\n"
        out += "PRAGMA application_id = \(applicationID);\nPRAGMA user_version = \(currentVersion);\n\n"
        for row in rows {
            let sql: String = row["sql"]
            out += sql + ";\n\n"
        }
        return out
    }
}
