-- captions: the videos it may caption (a read model of ingest's events), caption tracks and their versions.
-- Jobs (transcription, translation) live in the common `jobs` table; their parameters in `jobs.params`.

-- What captions knows of a video, from video.ingested.v1 / video.deleted.v1 (never read from ingest's schema).
CREATE TABLE videos (
    video_id    uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    storage_key text NOT NULL,
    duration_s  double precision NOT NULL,
    fps         double precision NOT NULL DEFAULT 0,
    audio_codec text NOT NULL DEFAULT '',
    deleted_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_owner ON videos (owner_id);

-- One caption track per (video, language) while it is live; every edit is a new row in track_versions.
CREATE TABLE tracks (
    id          uuid PRIMARY KEY,
    video_id    uuid NOT NULL,
    owner_id    uuid NOT NULL,
    job_id      uuid,
    language    text NOT NULL,
    label       text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('transcribed', 'translated', 'edited')),
    status      text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'deleted')),
    version     int NOT NULL DEFAULT 1,
    cue_count   int NOT NULL DEFAULT 0,
    quality     jsonb NOT NULL DEFAULT '{}'::jsonb,
    vtt_key     text NOT NULL,
    srt_key     text NOT NULL,
    json_key    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tracks_live_language ON tracks (video_id, language) WHERE status = 'ready';
CREATE INDEX tracks_video ON tracks (video_id, created_at);

CREATE TABLE track_versions (
    track_id   uuid NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    version    int NOT NULL,
    kind       text NOT NULL,
    cues       jsonb NOT NULL,
    quality    jsonb NOT NULL,
    author_id  uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, version)
);
