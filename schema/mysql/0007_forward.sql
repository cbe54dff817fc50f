-- Restreaming: the RTMP(S) destinations a room's lives are pushed to.
-- key_sealed is the stream key sealed with AES-GCM (never stored in
-- clear); key_hint its last characters, shown masked.
CREATE TABLE IF NOT EXISTS mf_forward (
    id            BIGINT         NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT         NOT NULL,
    url           VARCHAR(512)   NOT NULL,
    key_sealed    VARBINARY(1024) NOT NULL,
    key_hint      VARCHAR(16)    NOT NULL DEFAULT '',
    enabled       TINYINT(1)     NOT NULL DEFAULT 1,
    created_time  DATETIME(3)    NOT NULL,
    KEY mf_forward_room (room_id, id),
    CONSTRAINT mf_forward_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
