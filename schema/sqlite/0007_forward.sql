-- Restreaming: the RTMP(S) destinations a room's lives are pushed to.
-- key_sealed is the stream key sealed with AES-GCM (never stored in
-- clear); key_hint its last characters, shown masked.
CREATE TABLE IF NOT EXISTS mf_forward (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES mf_live_stream(id),
    url           TEXT    NOT NULL,
    key_sealed    BLOB    NOT NULL,
    key_hint      TEXT    NOT NULL DEFAULT '',
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_time  DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS mf_forward_room ON mf_forward (room_id, id);
