-- ingest: the video catalogue, URL imports, platform searches (job leases: common/0002_job_runs.sql).

CREATE TABLE videos (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    title       text NOT NULL DEFAULT '',
    source      text NOT NULL CHECK (source IN ('upload', 'import', 'render', 'migration')),
    source_url  text,
    -- what a video was made from, for idempotency: import:<id>, render:<render_id>, migration:<url>#<key>
    source_ref  text UNIQUE,
    storage_key text NOT NULL,
    container   text NOT NULL,
    content_type text NOT NULL,
    duration_s  double precision NOT NULL,
    width       int NOT NULL DEFAULT 0,
    height      int NOT NULL DEFAULT 0,
    rotation    int NOT NULL DEFAULT 0,
    fps         double precision NOT NULL DEFAULT 0,
    video_codec text NOT NULL DEFAULT '',
    audio_codec text NOT NULL DEFAULT '',
    audio_only  boolean NOT NULL DEFAULT false,
    size_bytes  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_owner ON videos (owner_id, created_at DESC, id DESC);

CREATE TABLE imports (
    id               uuid PRIMARY KEY,
    job_id           uuid NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    owner_id         uuid NOT NULL,
    url              text NOT NULL,
    title            text NOT NULL DEFAULT '',
    allow_audio_only boolean NOT NULL DEFAULT false,
    video_id         uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imports_owner_url ON imports (owner_id, url);

CREATE TABLE searches (
    id         uuid PRIMARY KEY,
    job_id     uuid NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    owner_id   uuid NOT NULL,
    platform   text NOT NULL CHECK (platform IN ('youtube', 'tiktok')),
    query      text NOT NULL,
    max_results int NOT NULL CHECK (max_results BETWEEN 1 AND 50),
    target     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE search_results (
    search_id     uuid NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    position      int NOT NULL,
    platform_id   text NOT NULL DEFAULT '',
    url           text NOT NULL,
    title         text NOT NULL DEFAULT '',
    uploader      text NOT NULL DEFAULT '',
    view_count    bigint,
    like_count    bigint,
    comment_count bigint,
    duration_s    double precision,
    thumbnail_url text,
    published_at  timestamptz,
    PRIMARY KEY (search_id, position)
);
