-- Live room interactions: comments, likes, gifts, viewing history.
ALTER TABLE mf_live_stream ADD COLUMN like_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS mf_comment (
    id            BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT        NOT NULL,
    user_id       BIGINT        NOT NULL,
    content       VARCHAR(1024) NOT NULL,
    created_time  DATETIME(3)   NOT NULL,
    KEY mf_comment_room (room_id, id),
    CONSTRAINT mf_comment_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_comment_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_gift (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(64)  NOT NULL,
    image         VARCHAR(512) NOT NULL DEFAULT '',
    coin          BIGINT       NOT NULL,
    sort          INT          NOT NULL DEFAULT 0,
    is_deleted    TINYINT(1)   NOT NULL DEFAULT 0,
    CONSTRAINT mf_gift_coin CHECK (coin > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_live_gift (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT      NOT NULL,
    user_id       BIGINT      NOT NULL,
    gift_id       BIGINT      NOT NULL,
    count         INT         NOT NULL,
    coin          BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    KEY mf_live_gift_room (room_id, id),
    CONSTRAINT mf_live_gift_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_live_gift_user FOREIGN KEY (user_id) REFERENCES mf_user (id),
    CONSTRAINT mf_live_gift_gift FOREIGN KEY (gift_id) REFERENCES mf_gift (id),
    CONSTRAINT mf_live_gift_count CHECK (count > 0 AND coin > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_live_user (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id       BIGINT      NOT NULL,
    user_id       BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    UNIQUE KEY mf_live_user_room_user (room_id, user_id),
    CONSTRAINT mf_live_user_stream FOREIGN KEY (room_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_live_user_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO mf_gift (name, image, coin, sort) VALUES
    ('flower', '/static/gift/flower.png', 1, 1),
    ('heart', '/static/gift/heart.png', 5, 2),
    ('rocket', '/static/gift/rocket.png', 100, 3),
    ('castle', '/static/gift/castle.png', 500, 4);
