-- streaming (media pipeline): one stream per video, its renditions, and caption tracks added later.

CREATE TABLE streams (
    video_id    uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    job_id      uuid,
    status      text NOT NULL DEFAULT 'processing'
                CHECK (status IN ('processing', 'playable', 'ready', 'error')),
    source_key  text NOT NULL,
    duration_s  double precision NOT NULL DEFAULT 0,
    width       int NOT NULL DEFAULT 0,
    height      int NOT NULL DEFAULT 0,
    error       jsonb,
    has_dash    boolean NOT NULL DEFAULT false,
    poster_key  text,
    sprite_key  text,
    thumbnails_vtt_key text,
    -- how many times a worker started this stream (redeliveries after a crash show here)
    attempts    int NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_owner ON streams (owner_id, created_at DESC);

CREATE TABLE renditions (
    video_id          uuid NOT NULL REFERENCES streams (video_id) ON DELETE CASCADE,
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('video', 'audio', 'subtitle')),
    width             int NOT NULL DEFAULT 0,
    height            int NOT NULL DEFAULT 0,
    -- peak segment bitrate (HLS BANDWIDTH) and the mean (AVERAGE-BANDWIDTH), both in bits/s, measured
    bandwidth         int NOT NULL DEFAULT 0,
    average_bandwidth int NOT NULL DEFAULT 0,
    codecs            text NOT NULL DEFAULT '',
    frame_rate        double precision NOT NULL DEFAULT 0,
    playlist_key      text NOT NULL,
    segment_count     int NOT NULL DEFAULT 0,
    size_bytes        bigint NOT NULL DEFAULT 0,
    copy              boolean NOT NULL DEFAULT false,
    complete          boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    PRIMARY KEY (video_id, name)
);

CREATE TABLE subtitle_tracks (
    video_id   uuid NOT NULL REFERENCES streams (video_id) ON DELETE CASCADE,
    language   text NOT NULL,
    label      text NOT NULL,
    key        text NOT NULL,
    source_key text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, language)
);
