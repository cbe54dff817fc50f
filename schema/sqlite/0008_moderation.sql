-- Room moderation (Live.room.mod.*): a room's moderators, the mutes, kicks
-- and bans of its users with when they end (NULL: until lifted), its chat
-- settings (slow mode, followers-only, its own word list), deleted
-- comments, and the log of every moderation action.
ALTER TABLE mf_comment ADD COLUMN is_deleted INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS mf_room_mod (
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    created_time  DATETIME NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE IF NOT EXISTS mf_room_restrict (
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    kind          TEXT    NOT NULL,
    until_time    DATETIME NULL,
    by_id         INTEGER NOT NULL,
    created_time  DATETIME NOT NULL,
    PRIMARY KEY (room_id, user_id, kind)
);

CREATE TABLE IF NOT EXISTS mf_room_chat (
    room_id        INTEGER PRIMARY KEY REFERENCES mf_live_stream(id),
    slow_seconds   INTEGER NOT NULL DEFAULT 0,
    followers_only INTEGER NOT NULL DEFAULT 0,
    word_mode      TEXT    NOT NULL DEFAULT 'mask',
    words          TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS mf_room_mod_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    actor_id      INTEGER NOT NULL,
    target_id     INTEGER NOT NULL DEFAULT 0,
    action        TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT '',
    until_time    DATETIME NULL,
    created_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_room_mod_log_room ON mf_room_mod_log (room_id, id);
