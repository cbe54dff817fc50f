-- Uploaded pictures (avatars, room covers), kept in the database so that
-- every node of a cluster serves them: one row per picture, keyed by the
-- SHA-256 of its bytes (its URL is /images/<hash>.<png|jpg>), and its
-- bytes in parts of at most 512 KiB (a re-encoded picture can be larger
-- than the upload; parts keep every row far below max_allowed_packet).
-- A picture is written once, in one transaction: its row, then its parts.
CREATE TABLE IF NOT EXISTS mf_image (
    hash          CHAR(64)     NOT NULL PRIMARY KEY,
    type          VARCHAR(32)  NOT NULL,
    width         INT          NOT NULL,
    height        INT          NOT NULL,
    size          INT          NOT NULL,
    parts         INT          NOT NULL,
    created_time  DATETIME(3)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE IF NOT EXISTS mf_image_part (
    hash   CHAR(64)    NOT NULL,
    part   INT         NOT NULL,
    bytes  MEDIUMBLOB  NOT NULL,
    PRIMARY KEY (hash, part),
    CONSTRAINT mf_image_part_image FOREIGN KEY (hash) REFERENCES mf_image (hash) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
