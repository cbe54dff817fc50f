-- Live room interactions: comments, likes, gifts, viewing history.
ALTER TABLE mf_live_stream ADD COLUMN like_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS mf_comment (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    content       TEXT    NOT NULL,
    created_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_comment_room ON mf_comment (room_id, id);

CREATE TABLE IF NOT EXISTS mf_gift (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    image         TEXT    NOT NULL DEFAULT '',
    coin          INTEGER NOT NULL CHECK (coin > 0),
    sort          INTEGER NOT NULL DEFAULT 0,
    is_deleted    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS mf_live_gift (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    gift_id       INTEGER NOT NULL REFERENCES mf_gift(id),
    count         INTEGER NOT NULL CHECK (count > 0),
    coin          INTEGER NOT NULL CHECK (coin > 0),
    created_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_live_gift_room ON mf_live_gift (room_id, id);

CREATE TABLE IF NOT EXISTS mf_live_user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    created_time  DATETIME NOT NULL,
    UNIQUE (room_id, user_id)
);

INSERT INTO mf_gift (name, image, coin, sort) VALUES
    ('flower', '/static/gift/flower.png', 1, 1),
    ('heart', '/static/gift/heart.png', 5, 2),
    ('rocket', '/static/gift/rocket.png', 100, 3),
    ('castle', '/static/gift/castle.png', 500, 4);
