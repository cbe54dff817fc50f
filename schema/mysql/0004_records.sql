-- Recordings of past lives, and the per-room recording switch.
ALTER TABLE mf_live_stream ADD COLUMN record TINYINT(1) NOT NULL DEFAULT 1;

CREATE TABLE IF NOT EXISTS mf_record (
    id            BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT        NOT NULL,
    stream        VARCHAR(64)   NOT NULL,
    path          VARCHAR(512)  NOT NULL,
    status        VARCHAR(16)   NOT NULL DEFAULT 'recording',
    error         VARCHAR(512)  NOT NULL DEFAULT '',
    video_codec   VARCHAR(16)   NOT NULL DEFAULT '',
    audio_codec   VARCHAR(16)   NOT NULL DEFAULT '',
    width         INT           NOT NULL DEFAULT 0,
    height        INT           NOT NULL DEFAULT 0,
    duration_ms   BIGINT        NOT NULL DEFAULT 0,
    size          BIGINT        NOT NULL DEFAULT 0,
    start_time    DATETIME(3)   NOT NULL,
    end_time      DATETIME(3)   NULL,
    is_deleted    TINYINT(1)    NOT NULL DEFAULT 0,
    KEY mf_record_room (room_id, is_deleted, id),
    KEY mf_record_start (is_deleted, start_time),
    CONSTRAINT mf_record_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
