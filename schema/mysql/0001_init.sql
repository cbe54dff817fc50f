-- Users, rooms (live streams) and refresh tokens: MoFang's models.
CREATE TABLE IF NOT EXISTS mf_user (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(64)  NOT NULL,
    password      VARCHAR(255) NOT NULL,
    nickname      VARCHAR(64)  NOT NULL DEFAULT '',
    avatar        VARCHAR(512) NOT NULL DEFAULT '',
    ip_address    VARCHAR(64)  NOT NULL DEFAULT '',
    coin          BIGINT       NOT NULL DEFAULT 0,
    is_admin      TINYINT(1)   NOT NULL DEFAULT 0,
    is_deleted    TINYINT(1)   NOT NULL DEFAULT 0,
    created_time  DATETIME(3)  NOT NULL,
    updated_time  DATETIME(3)  NOT NULL,
    UNIQUE KEY mf_user_name (name),
    CONSTRAINT mf_user_coin CHECK (coin >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_live_stream (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(64)  NOT NULL,
    room_name     VARCHAR(255) NOT NULL DEFAULT '',
    room_password VARCHAR(255) NOT NULL DEFAULT '',
    user_id       BIGINT       NOT NULL,
    title         VARCHAR(255) NOT NULL DEFAULT '',
    cover         VARCHAR(512) NOT NULL DEFAULT '',
    look_count    BIGINT       NOT NULL DEFAULT 0,
    coin          BIGINT       NOT NULL DEFAULT 0,
    status        TINYINT      NOT NULL DEFAULT 0,
    is_deleted    TINYINT(1)   NOT NULL DEFAULT 0,
    created_time  DATETIME(3)  NOT NULL,
    updated_time  DATETIME(3)  NOT NULL,
    UNIQUE KEY mf_live_stream_name (name),
    KEY mf_live_stream_user (user_id, is_deleted, status),
    KEY mf_live_stream_list (is_deleted, id, status),
    CONSTRAINT mf_live_stream_owner FOREIGN KEY (user_id) REFERENCES mf_user (id),
    CONSTRAINT mf_live_stream_coin CHECK (coin >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_live_room (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    stream_id     BIGINT      NOT NULL,
    user_id       BIGINT      NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    UNIQUE KEY mf_live_room_stream_user (stream_id, user_id),
    CONSTRAINT mf_live_room_stream FOREIGN KEY (stream_id) REFERENCES mf_live_stream (id),
    CONSTRAINT mf_live_room_user FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS mf_refresh_token (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id       BIGINT      NOT NULL,
    token_hash    CHAR(64)    NOT NULL,
    expires_time  DATETIME(3) NOT NULL,
    created_time  DATETIME(3) NOT NULL,
    UNIQUE KEY mf_refresh_token_hash (token_hash),
    KEY mf_refresh_token_user (user_id),
    CONSTRAINT mf_refresh_token_owner FOREIGN KEY (user_id) REFERENCES mf_user (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
