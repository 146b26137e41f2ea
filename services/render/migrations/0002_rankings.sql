-- render: ranking projects and their items, the imports it asked ingest for, renders, and a read model of
-- the videos it may use (from ingest's events, never from ingest's schema). A render's job lives in the common
-- `jobs` table (its id is the render's id); its status, progress and error are read from there.

-- What render knows of a video, from video.ingested.v1 / video.deleted.v1.
CREATE TABLE videos (
    video_id    uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    storage_key text NOT NULL,
    duration_s  double precision NOT NULL,
    width       int NOT NULL DEFAULT 0,
    height      int NOT NULL DEFAULT 0,
    audio_codec text NOT NULL DEFAULT '',
    title       text NOT NULL DEFAULT '',
    deleted_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One video.import_requested.v1 this service sent (request_id = the answer's correlation_id).
CREATE TABLE imports (
    request_id  text PRIMARY KEY,
    owner_id    uuid NOT NULL,
    url         text NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    video_id    uuid,
    error       jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL,
    title        text NOT NULL,
    language     text NOT NULL,
    n            int NOT NULL,
    play_order   text NOT NULL CHECK (play_order IN ('countdown', 'top_down')),
    order_by     text NOT NULL CHECK (order_by IN ('views', 'likes', 'comments', 'manual')),
    clip_seconds double precision NOT NULL,
    target       text NOT NULL CHECK (target IN ('shorts', 'tiktok', 'reels')),
    source       jsonb NOT NULL,
    options      jsonb NOT NULL DEFAULT '{}'::jsonb,
    version      int NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner ON projects (owner_id, created_at DESC, id DESC);

-- rank 1 is the best; a project's items are rewritten as a whole by an edit (ranks stay dense 1..n)
CREATE TABLE items (
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rank          int NOT NULL CHECK (rank >= 1),
    id            uuid NOT NULL,
    video_id      uuid,
    request_id    text,
    source_url    text,
    platform      text NOT NULL DEFAULT '',
    uploader      text NOT NULL DEFAULT '',
    own           boolean NOT NULL DEFAULT false,
    title         text NOT NULL DEFAULT '',
    caption       text NOT NULL DEFAULT '',
    start_s       double precision NOT NULL,
    end_s         double precision NOT NULL CHECK (end_s > start_s),
    view_count    bigint,
    like_count    bigint,
    comment_count bigint,
    counted_at    timestamptz,
    PRIMARY KEY (project_id, rank),
    CHECK (video_id IS NOT NULL OR request_id IS NOT NULL)
);

-- id = the render job's id; items is the project's items as they were when the render was asked for
CREATE TABLE renders (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id    uuid NOT NULL,
    spec        jsonb NOT NULL,
    estimated_s double precision NOT NULL,
    credits     int NOT NULL,
    output_key  text,
    duration_s  double precision,
    video_id    uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX renders_project ON renders (project_id, created_at DESC, id DESC);
