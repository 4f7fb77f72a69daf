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
        ("v2-field-clocks", MigrationV2.run),
        ("v3-search-budget", v3),
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

    static func v1(_ db: Database) throws {
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

    /// The tables of schema v2 (see `Schemas/store-schema.sql` for what each column means).
    static let v2Tables = """
        -- This replica: exactly one row.
        CREATE TABLE replica (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            origin_id INTEGER NOT NULL REFERENCES origin(id),
            role TEXT NOT NULL CHECK (role IN ('device', 'server')),
            created_at INTEGER NOT NULL,
            clock INTEGER NOT NULL,
            last_seq INTEGER NOT NULL
        );

        -- Account names, numbered.
        CREATE TABLE account (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );

        -- Every origin this replica has heard of: a replica id and its account.
        CREATE TABLE origin (
            id INTEGER PRIMARY KEY,
            replica_id BLOB NOT NULL CHECK (length(replica_id) = 16),
            account_id INTEGER NOT NULL REFERENCES account(id),
            UNIQUE (replica_id, account_id)
        );

        -- This replica's own incarnations: the one in force from first_seq on.
        CREATE TABLE incarnation (
            first_seq INTEGER PRIMARY KEY,
            incarnation INTEGER NOT NULL
        );

        -- Identities this replica left behind when it found it had been restored from a backup or copied.
        CREATE TABLE identity_history (
            id INTEGER PRIMARY KEY,
            origin_id INTEGER NOT NULL REFERENCES origin(id),
            last_seq INTEGER NOT NULL,
            replaced_at INTEGER NOT NULL,
            reason TEXT NOT NULL
        );

        -- Per origin and scope (0 shared, 1 private): all changes up to seq are held or merged away, and the
        -- origin's incarnation at seq (0: unknown).
        CREATE TABLE knowledge (
            origin_id INTEGER NOT NULL REFERENCES origin(id),
            scope INTEGER NOT NULL CHECK (scope IN (0, 1)),
            seq INTEGER NOT NULL,
            incarnation INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (origin_id, scope)
        ) WITHOUT ROWID;

        -- The change log: every retained change, own or received. target is the article row (entity 1 and 3)
        -- or the comment row (entity 2); a read state's account is its origin's. value_type 6: the value is the
        -- materialized article row (its winning content version, stored once).
        CREATE TABLE change_log (
            origin_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            hlc INTEGER NOT NULL,
            entity INTEGER NOT NULL CHECK (entity IN (1, 2, 3)),
            target INTEGER NOT NULL,
            field INTEGER NOT NULL CHECK (field BETWEEN 1 AND 7),
            value_type INTEGER NOT NULL CHECK (value_type BETWEEN 0 AND 6),
            value,
            PRIMARY KEY (origin_id, seq)
        ) WITHOUT ROWID;

        -- Materialized state: each field's winning value and the clock (hlc, origin, seq) of the change that
        -- wrote it. An article row without content_hlc is a placeholder (read state or comments arrived first).
        CREATE TABLE article (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            source TEXT,
            url TEXT,
            title TEXT,
            byline TEXT,
            body TEXT,
            topics TEXT,
            related TEXT,
            published_at INTEGER,
            updated_at INTEGER,
            sort_key INTEGER,
            content_hlc INTEGER,
            content_origin INTEGER,
            content_seq INTEGER,
            body_sha256 BLOB
        );
        CREATE INDEX article_feed ON article (sort_key DESC, key) WHERE content_hlc IS NOT NULL;

        CREATE TABLE comment (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            article_id INTEGER,
            parent_key TEXT,
            author_id INTEGER,
            body TEXT NOT NULL DEFAULT '',
            created_hlc INTEGER,
            created_origin INTEGER,
            created_seq INTEGER,
            body_hlc INTEGER,
            body_origin INTEGER,
            body_seq INTEGER,
            deleted_hlc INTEGER,
            deleted_origin INTEGER,
            deleted_seq INTEGER,
            extras INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX comment_thread ON comment (article_id, created_hlc, key) WHERE created_hlc IS NOT NULL;

        CREATE TABLE read_state (
            account_id INTEGER NOT NULL,
            article_id INTEGER NOT NULL,
            read_at INTEGER,
            read_hlc INTEGER,
            read_origin INTEGER,
            read_seq INTEGER,
            saved_at INTEGER,
            saved_hlc INTEGER,
            saved_origin INTEGER,
            saved_seq INTEGER,
            progress REAL NOT NULL DEFAULT 0,
            progress_hlc INTEGER,
            progress_origin INTEGER,
            progress_seq INTEGER,
            reset_hlc INTEGER,
            reset_origin INTEGER,
            reset_seq INTEGER,
            extras INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (account_id, article_id)
        ) WITHOUT ROWID;

        -- Retained changes that are no field's winner: a read state's further progress positions, and every
        -- retained change of a comment whose id is not bound to an account.
        CREATE TABLE retained_extra (
            entity INTEGER NOT NULL,
            target INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            origin_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (entity, target, account_id, origin_id, seq)
        ) WITHOUT ROWID;
        """

    /// Schema v3: the full-text index of articles, the body digest that lets a body leave the replica and come
    /// back, and the replica-local tables of the storage budget (`Schemas/store-schema.md`, "v3").
    static func v3(_ db: Database) throws {
        db.add(function: bodyDigestFunction)
        // Files made by v2 builds lack the digest column; a v1 file migrated by this build has it already (the
        // v2 step's replay writes it).
        if try !db.columns(in: "article").contains(where: { $0.name == "body_sha256" }) {
            try db.execute(sql: "ALTER TABLE article ADD COLUMN body_sha256 BLOB")
        }
        try db.execute(sql: """
            UPDATE article SET body_sha256 = rs_body_sha256(body) WHERE content_hlc IS NOT NULL AND body_sha256 IS NULL;

            -- Replica-local facts about articles: never exchanged, never in the change log.
            CREATE TABLE article_local (
                article_id INTEGER PRIMARY KEY,
                opened_at INTEGER,
                evicted_at INTEGER
            );
            CREATE INDEX article_local_opened ON article_local (opened_at);

            -- Saved articles by article, for eviction's "saved by any account" test (read_state's key starts with
            -- the account, so without this the test scans every read state for every article).
            CREATE INDEX read_state_saved ON read_state (article_id) WHERE saved_at IS NOT NULL;

            -- Replica-local settings (the storage budget), by name.
            CREATE TABLE setting (
                name TEXT PRIMARY KEY,
                value
            ) WITHOUT ROWID;

            -- The full-text index of articles: an external-content FTS5 table over the article rows, kept by
            -- triggers in the same transaction as every write to them. Accents and case are folded.
            CREATE VIRTUAL TABLE article_search USING fts5(
                title, byline, source, body,
                content = 'article', content_rowid = 'id',
                tokenize = 'unicode61 remove_diacritics 2'
            );
            CREATE TRIGGER article_indexed_insert AFTER INSERT ON article BEGIN
                INSERT INTO article_search (rowid, title, byline, source, body)
                VALUES (new.id, new.title, new.byline, new.source, new.body);
            END;
            CREATE TRIGGER article_indexed_delete AFTER DELETE ON article BEGIN
                INSERT INTO article_search (article_search, rowid, title, byline, source, body)
                VALUES ('delete', old.id, old.title, old.byline, old.source, old.body);
            END;
            CREATE TRIGGER article_indexed_update AFTER UPDATE OF title, byline, source, body ON article BEGIN
                INSERT INTO article_search (article_search, rowid, title, byline, source, body)
                VALUES ('delete', old.id, old.title, old.byline, old.source, old.body);
                INSERT INTO article_search (rowid, title, byline, source, body)
                VALUES (new.id, new.title, new.byline, new.source, new.body);
            END;
            INSERT INTO article_search (article_search) VALUES ('rebuild');
            """)
    }

    /// `rs_body_sha256(text)`: the SHA-256 of a text's UTF-8 bytes, for the v3 migration.
    static let bodyDigestFunction = DatabaseFunction("rs_body_sha256", argumentCount: 1, pure: true) { values in
        guard let text = String.fromDatabaseValue(values[0]) else { return Data(SHA256.digest([UInt8]())) }
        return Data(SHA256.digest(utf8: text))
    }

    /// The schema as SQL text: every table and index, sorted by name (what `Schemas/store-schema.sql` holds).
    static func dumpSQL(_ db: Database) throws -> String {
        let rows = try Row.fetchAll(db, sql: """
            SELECT type, name, sql FROM sqlite_master
            WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'article_search_%'
            ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name
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
