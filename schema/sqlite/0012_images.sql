-- Uploaded pictures (avatars, room covers), kept in the database so that
-- every node of a cluster serves them: one row per picture, keyed by the
-- SHA-256 of its bytes (its URL is /images/<hash>.<png|jpg>), and its
-- bytes in parts of at most 512 KiB (as on MySQL, where parts keep every
-- row far below max_allowed_packet). A picture is written once, in one
-- transaction: its row, then its parts.
CREATE TABLE IF NOT EXISTS mf_image (
    hash          TEXT    NOT NULL PRIMARY KEY,
    type          TEXT    NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    parts         INTEGER NOT NULL,
    created_time  DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS mf_image_part (
    hash   TEXT    NOT NULL REFERENCES mf_image (hash) ON DELETE CASCADE,
    part   INTEGER NOT NULL,
    bytes  BLOB    NOT NULL,
    PRIMARY KEY (hash, part)
);
