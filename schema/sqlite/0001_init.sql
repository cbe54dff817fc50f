-- Users, rooms (live streams) and refresh tokens: MoFang's models.
CREATE TABLE IF NOT EXISTS mf_user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    password      TEXT    NOT NULL,
    nickname      TEXT    NOT NULL DEFAULT '',
    avatar        TEXT    NOT NULL DEFAULT '',
    ip_address    TEXT    NOT NULL DEFAULT '',
    coin          INTEGER NOT NULL DEFAULT 0 CHECK (coin >= 0),
    is_admin      INTEGER NOT NULL DEFAULT 0,
    is_deleted    INTEGER NOT NULL DEFAULT 0,
    created_time  DATETIME NOT NULL,
    updated_time  DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS mf_live_stream (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    room_name     TEXT    NOT NULL DEFAULT '',
    room_password TEXT    NOT NULL DEFAULT '',
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    title         TEXT    NOT NULL DEFAULT '',
    cover         TEXT    NOT NULL DEFAULT '',
    look_count    INTEGER NOT NULL DEFAULT 0,
    coin          INTEGER NOT NULL DEFAULT 0 CHECK (coin >= 0),
    status        INTEGER NOT NULL DEFAULT 0,
    is_deleted    INTEGER NOT NULL DEFAULT 0,
    created_time  DATETIME NOT NULL,
    updated_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_live_stream_user ON mf_live_stream (user_id, is_deleted, status);
CREATE INDEX IF NOT EXISTS mf_live_stream_list ON mf_live_stream (is_deleted, id, status);

CREATE TABLE IF NOT EXISTS mf_live_room (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id     INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    created_time  DATETIME NOT NULL,
    UNIQUE (stream_id, user_id)
);

CREATE TABLE IF NOT EXISTS mf_refresh_token (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    token_hash    TEXT    NOT NULL UNIQUE,
    expires_time  DATETIME NOT NULL,
    created_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_refresh_token_user ON mf_refresh_token (user_id);
