-- Live sessions (one a live: publish start to end) with their viewers
-- over time, and the gift leaderboards (per session and all-time per
-- room), kept by adding in the gift's own transaction.
CREATE TABLE IF NOT EXISTS mf_live_session (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    start_time    DATETIME NOT NULL,
    end_time      DATETIME,
    -- room_id while open, NULL once ended: at most one open session a room.
    open_room     INTEGER UNIQUE,
    peak_viewers  INTEGER NOT NULL DEFAULT 0,
    total_viewers INTEGER NOT NULL DEFAULT 0,
    likes         INTEGER NOT NULL DEFAULT 0,
    gifts         INTEGER NOT NULL DEFAULT 0,
    coins         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mf_live_session_room ON mf_live_session (room_id, id);

CREATE TABLE IF NOT EXISTS mf_live_sample (
    session_id    INTEGER NOT NULL REFERENCES mf_live_session(id),
    sample_time   DATETIME NOT NULL,
    viewers       INTEGER NOT NULL,
    PRIMARY KEY (session_id, sample_time)
);

CREATE TABLE IF NOT EXISTS mf_gift_rank (
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    session_id    INTEGER NOT NULL, -- 0: all-time
    user_id       INTEGER NOT NULL REFERENCES mf_user(id),
    coins         INTEGER NOT NULL,
    gifts         INTEGER NOT NULL,
    -- minus the id of the user's last gift here: on equal coins who got
    -- there first ranks first, and (coins DESC, reached DESC) is one
    -- backward scan of mf_gift_rank_top.
    reached       INTEGER NOT NULL,
    updated_time  DATETIME NOT NULL,
    PRIMARY KEY (room_id, session_id, user_id)
);
CREATE INDEX IF NOT EXISTS mf_gift_rank_top ON mf_gift_rank (room_id, session_id, coins, reached);
