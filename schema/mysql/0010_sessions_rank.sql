-- Live sessions (one a live: publish start to end) with their viewers
-- over time, and the gift leaderboards (per session and all-time per
-- room), kept by adding in the gift's own transaction.
CREATE TABLE IF NOT EXISTS mf_live_session (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT      NOT NULL,
    start_time    DATETIME(3) NOT NULL,
    end_time      DATETIME(3) NULL,
    -- room_id while open, NULL once ended: at most one open session a room.
    open_room     BIGINT      NULL,
    peak_viewers  INT         NOT NULL DEFAULT 0,
    total_viewers BIGINT      NOT NULL DEFAULT 0,
    likes         BIGINT      NOT NULL DEFAULT 0,
    gifts         BIGINT      NOT NULL DEFAULT 0,
    coins         BIGINT      NOT NULL DEFAULT 0,
    KEY mf_live_session_room (room_id, id),
    UNIQUE KEY mf_live_session_open (open_room),
    CONSTRAINT mf_live_session_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_live_sample (
    session_id    BIGINT      NOT NULL,
    sample_time   DATETIME(3) NOT NULL,
    viewers       INT         NOT NULL,
    PRIMARY KEY (session_id, sample_time),
    CONSTRAINT mf_live_sample_session FOREIGN KEY (session_id) REFERENCES mf_live_session (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_gift_rank (
    room_id       BIGINT      NOT NULL,
    session_id    BIGINT      NOT NULL, -- 0: all-time
    user_id       BIGINT      NOT NULL,
    coins         BIGINT      NOT NULL,
    gifts         BIGINT      NOT NULL,
    -- minus the id of the user's last gift here: on equal coins who got
    -- there first ranks first, and (coins DESC, reached DESC) is one
    -- backward scan of mf_gift_rank_top.
    reached       BIGINT      NOT NULL,
    updated_time  DATETIME(3) NOT NULL,
    PRIMARY KEY (room_id, session_id, user_id),
    KEY mf_gift_rank_top (room_id, session_id, coins, reached),
    CONSTRAINT mf_gift_rank_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_gift_rank_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
