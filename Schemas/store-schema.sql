-- ReaderSync replica store schema, version 3.
-- Generated from the migrations (readersync schema); a test checks it matches.
PRAGMA application_id = 1381202275;
PRAGMA user_version = 3;

CREATE TABLE account (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

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

CREATE TABLE article_local (
    article_id INTEGER PRIMARY KEY,
    opened_at INTEGER,
    evicted_at INTEGER
);

CREATE VIRTUAL TABLE article_search USING fts5(
    title, byline, source, body,
    content = 'article', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

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

CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);

CREATE TABLE identity_history (
    id INTEGER PRIMARY KEY,
    origin_id INTEGER NOT NULL REFERENCES origin(id),
    last_seq INTEGER NOT NULL,
    replaced_at INTEGER NOT NULL,
    reason TEXT NOT NULL
);

CREATE TABLE incarnation (
    first_seq INTEGER PRIMARY KEY,
    incarnation INTEGER NOT NULL
);

CREATE TABLE knowledge (
    origin_id INTEGER NOT NULL REFERENCES origin(id),
    scope INTEGER NOT NULL CHECK (scope IN (0, 1)),
    seq INTEGER NOT NULL,
    incarnation INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (origin_id, scope)
) WITHOUT ROWID;

CREATE TABLE origin (
    id INTEGER PRIMARY KEY,
    replica_id BLOB NOT NULL CHECK (length(replica_id) = 16),
    account_id INTEGER NOT NULL REFERENCES account(id),
    UNIQUE (replica_id, account_id)
);

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

CREATE TABLE replica (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    origin_id INTEGER NOT NULL REFERENCES origin(id),
    role TEXT NOT NULL CHECK (role IN ('device', 'server')),
    created_at INTEGER NOT NULL,
    clock INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);

CREATE TABLE retained_extra (
    entity INTEGER NOT NULL,
    target INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    origin_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (entity, target, account_id, origin_id, seq)
) WITHOUT ROWID;

CREATE TABLE setting (
    name TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

CREATE INDEX article_feed ON article (sort_key DESC, key) WHERE content_hlc IS NOT NULL;

CREATE INDEX article_local_opened ON article_local (opened_at);

CREATE INDEX comment_thread ON comment (article_id, created_hlc, key) WHERE created_hlc IS NOT NULL;

CREATE INDEX read_state_saved ON read_state (article_id) WHERE saved_at IS NOT NULL;

CREATE TRIGGER article_indexed_delete AFTER DELETE ON article BEGIN
    INSERT INTO article_search (article_search, rowid, title, byline, source, body)
    VALUES ('delete', old.id, old.title, old.byline, old.source, old.body);
END;

CREATE TRIGGER article_indexed_insert AFTER INSERT ON article BEGIN
    INSERT INTO article_search (rowid, title, byline, source, body)
    VALUES (new.id, new.title, new.byline, new.source, new.body);
END;

CREATE TRIGGER article_indexed_update AFTER UPDATE OF title, byline, source, body ON article BEGIN
    INSERT INTO article_search (article_search, rowid, title, byline, source, body)
    VALUES ('delete', old.id, old.title, old.byline, old.source, old.body);
    INSERT INTO article_search (rowid, title, byline, source, body)
    VALUES (new.id, new.title, new.byline, new.source, new.body);
END;


