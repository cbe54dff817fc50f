-- Follows (User.follow), the live notice of each room (one "live"
-- notification per live) and scheduled lives (Live.schedule.*).
CREATE TABLE IF NOT EXISTS mf_follow (
    follower_id   INTEGER  NOT NULL REFERENCES mf_user(id),
    followee_id   INTEGER  NOT NULL REFERENCES mf_user(id),
    created_time  DATETIME NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX IF NOT EXISTS mf_follow_followee ON mf_follow (followee_id, created_time);
CREATE INDEX IF NOT EXISTS mf_follow_follower ON mf_follow (follower_id, created_time);

-- open is 1 from the start of a live (its followers told) to its end;
-- lives counts the lives begun.
CREATE TABLE IF NOT EXISTS mf_live_notice (
    room_id       INTEGER  NOT NULL PRIMARY KEY REFERENCES mf_live_stream(id),
    open          INTEGER  NOT NULL DEFAULT 0,
    lives         INTEGER  NOT NULL DEFAULT 0,
    started_time  DATETIME,
    ended_time    DATETIME
);

-- status: 0 upcoming, 1 started, 2 missed, 3 cancelled.
CREATE TABLE IF NOT EXISTS mf_live_schedule (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER  NOT NULL REFERENCES mf_live_stream(id),
    user_id       INTEGER  NOT NULL REFERENCES mf_user(id),
    at_time       DATETIME NOT NULL,
    title         TEXT     NOT NULL DEFAULT '',
    cover         TEXT     NOT NULL DEFAULT '',
    status        INTEGER  NOT NULL DEFAULT 0,
    started_time  DATETIME,
    created_time  DATETIME NOT NULL,
    updated_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_live_schedule_upcoming ON mf_live_schedule (status, at_time);
CREATE INDEX IF NOT EXISTS mf_live_schedule_room ON mf_live_schedule (room_id, status, at_time);
