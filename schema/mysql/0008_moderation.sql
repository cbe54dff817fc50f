-- Room moderation (Live.room.mod.*): a room's moderators, the mutes, kicks
-- and bans of its users with when they end (NULL: until lifted), its chat
-- settings (slow mode, followers-only, its own word list), deleted
-- comments, and the log of every moderation action.
ALTER TABLE mf_comment ADD COLUMN is_deleted TINYINT(1) NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS mf_room_mod (
    room_id       BIGINT      NOT NULL,
    user_id       BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    PRIMARY KEY (room_id, user_id),
    CONSTRAINT mf_room_mod_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_room_mod_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_room_restrict (
    room_id       BIGINT      NOT NULL,
    user_id       BIGINT      NOT NULL,
    kind          VARCHAR(16) NOT NULL,
    until_time    DATETIME(3) NULL,
    by_id         BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    PRIMARY KEY (room_id, user_id, kind),
    CONSTRAINT mf_room_restrict_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_room_restrict_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_room_chat (
    room_id        BIGINT      NOT NULL PRIMARY KEY,
    slow_seconds   INT         NOT NULL DEFAULT 0,
    followers_only TINYINT(1)  NOT NULL DEFAULT 0,
    word_mode      VARCHAR(16) NOT NULL DEFAULT 'mask',
    words          TEXT        NOT NULL,
    CONSTRAINT mf_room_chat_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_room_mod_log (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT       NOT NULL,
    actor_id      BIGINT       NOT NULL,
    target_id     BIGINT       NOT NULL DEFAULT 0,
    action        VARCHAR(32)  NOT NULL,
    detail        VARCHAR(255) NOT NULL DEFAULT '',
    until_time    DATETIME(3)  NULL,
    created_time  DATETIME(3)  NOT NULL,
    KEY mf_room_mod_log_room (room_id, id),
    CONSTRAINT mf_room_mod_log_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
