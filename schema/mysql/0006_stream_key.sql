-- A room's stream key generation: the publish key a streamer keeps in OBS
-- is made for one generation and works, whatever the time, until the
-- owner resets it (Live.stream.key.reset), which starts a new one.
ALTER TABLE mf_live_stream ADD COLUMN key_gen BIGINT NOT NULL DEFAULT 0;
