-- ReaderSync replica store schema, version 1.
-- Generated from the migrations (readersync schema); a test checks it matches.
PRAGMA application_id = 1381202275;
PRAGMA user_version = 1;

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

CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);

CREATE TABLE knowledge (
    origin_id INTEGER NOT NULL REFERENCES origin(id),
    scope INTEGER NOT NULL CHECK (scope IN (0, 1)),
    seq INTEGER NOT NULL,
    PRIMARY KEY (origin_id, scope)
) WITHOUT ROWID;

CREATE TABLE origin (
    id INTEGER PRIMARY KEY,
    replica_id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL
);

CREATE TABLE read_state (
    account TEXT NOT NULL,
    article_id TEXT NOT NULL,
    read_at INTEGER,
    progress REAL NOT NULL,
    saved_at INTEGER,
    PRIMARY KEY (account, article_id)
) WITHOUT ROWID;

CREATE TABLE replica (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    replica_id TEXT NOT NULL,
    account TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('device', 'server')),
    created_at INTEGER NOT NULL,
    clock INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);

CREATE INDEX article_feed ON article (sort_key DESC, id);

CREATE INDEX article_source ON article (source);

CREATE INDEX change_log_target ON change_log (entity, key, account);

CREATE INDEX comment_thread ON comment (article_id, created_hlc, id);


