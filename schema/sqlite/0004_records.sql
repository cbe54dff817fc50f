-- Recordings of past lives, and the per-room recording switch.
ALTER TABLE mf_live_stream ADD COLUMN record INTEGER NOT NULL DEFAULT 1;

CREATE TABLE IF NOT EXISTS mf_record (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    stream        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'recording',
    error         TEXT    NOT NULL DEFAULT '',
    video_codec   TEXT    NOT NULL DEFAULT '',
    audio_codec   TEXT    NOT NULL DEFAULT '',
    width         INTEGER NOT NULL DEFAULT 0,
    height        INTEGER NOT NULL DEFAULT 0,
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    size          INTEGER NOT NULL DEFAULT 0,
    start_time    DATETIME NOT NULL,
    end_time      DATETIME,
    is_deleted    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mf_record_room ON mf_record (room_id, is_deleted, id);
CREATE INDEX IF NOT EXISTS mf_record_start ON mf_record (is_deleted, start_time);
