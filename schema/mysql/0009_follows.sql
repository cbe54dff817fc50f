-- Follows (User.follow), the live notice of each room (one "live"
-- notification per live) and scheduled lives (Live.schedule.*).
CREATE TABLE IF NOT EXISTS mf_follow (
    follower_id   BIGINT      NOT NULL,
    followee_id   BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    KEY mf_follow_followee (followee_id, created_time),
    KEY mf_follow_follower (follower_id, created_time),
    CONSTRAINT mf_follow_from FOREIGN KEY (follower_id) REFERENCES mf_user (id),
    CONSTRAINT mf_follow_to FOREIGN KEY (followee_id) REFERENCES mf_user (id),
    CONSTRAINT mf_follow_self CHECK (follower_id <> followee_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- open is 1 from the start of a live (its followers told) to its end;
-- lives counts the lives begun.
CREATE TABLE IF NOT EXISTS mf_live_notice (
    room_id       BIGINT      NOT NULL PRIMARY KEY,
    open          TINYINT(1)  NOT NULL DEFAULT 0,
    lives         BIGINT      NOT NULL DEFAULT 0,
    started_time  DATETIME(3) NULL,
    ended_time    DATETIME(3) NULL,
    CONSTRAINT mf_live_notice_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- status: 0 upcoming, 1 started, 2 missed, 3 cancelled.
CREATE TABLE IF NOT EXISTS mf_live_schedule (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT       NOT NULL,
    user_id       BIGINT       NOT NULL,
    at_time       DATETIME(3)  NOT NULL,
    title         VARCHAR(256) NOT NULL DEFAULT '',
    cover         VARCHAR(512) NOT NULL DEFAULT '',
    status        TINYINT      NOT NULL DEFAULT 0,
    started_time  DATETIME(3)  NULL,
    created_time  DATETIME(3)  NOT NULL,
    updated_time  DATETIME(3)  NOT NULL,
    KEY mf_live_schedule_upcoming (status, at_time),
    KEY mf_live_schedule_room (room_id, status, at_time),
    CONSTRAINT mf_live_schedule_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_live_schedule_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
