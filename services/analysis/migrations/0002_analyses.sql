-- analysis: what it knows of videos (read model of ingest's and captions' events), analyses (one a video asked for,
-- alone or as an item of a batch), batches, requests it sent to other services, and the content cache.
-- Jobs live in the common `jobs` table: a single analysis is one paid job; a batch is one job (its progress, never
-- claimed) plus paid chunk jobs of up to BATCH_CHUNK_SIZE items, each with its own credit hold.

CREATE TABLE videos (
    video_id       uuid PRIMARY KEY,
    owner_id       uuid NOT NULL,
    duration_s     double precision NOT NULL DEFAULT 0,
    title          text NOT NULL DEFAULT '',
    -- a transcript captions already made of this video (captions.completed.v1): the cheapest source
    transcript_key text NOT NULL DEFAULT '',
    transcript_language text NOT NULL DEFAULT '',
    deleted_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batches (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL,
    job_id       uuid NOT NULL REFERENCES jobs (id),
    options      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'canceled', 'done')),
    parked_until timestamptz,          -- the per-day model quota is spent until then (QuotaParked)
    total        int NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX batches_owner ON batches (owner_id, created_at DESC, id DESC);

-- One row per analysed video. A batch item's `job_id` is its chunk's job; a single analysis's is its own.
-- Every item ends exactly once: its terminal write is made under its job's lease (JobContext.transaction).
CREATE TABLE analyses (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    job_id      uuid REFERENCES jobs (id),
    batch_id    uuid REFERENCES batches (id) ON DELETE CASCADE,
    position    int NOT NULL DEFAULT 0,
    video_id    uuid,
    url         text NOT NULL DEFAULT '',
    options     jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'cached', 'failed', 'canceled')),
    attempts    int NOT NULL DEFAULT 0,
    source      text,                  -- caption_track | platform_subtitles | audio
    language    text,
    title       text NOT NULL DEFAULT '',
    duration_s  double precision,
    transcript_key text,               -- the transcript used (JSON, our storage)
    cache_key   text,
    result      jsonb,
    error       jsonb,
    credits     int NOT NULL DEFAULT 0, -- what this analysis was charged
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (video_id IS NOT NULL OR url <> '')
);
CREATE INDEX analyses_owner ON analyses (owner_id, created_at DESC, id DESC) WHERE batch_id IS NULL;
CREATE INDEX analyses_batch ON analyses (batch_id, position);
CREATE INDEX analyses_job_state ON analyses (job_id, state, position);

-- A command sent to another service (ARCHITECTURE §5a) and its answer, by request id (= the answer's
-- correlation id). The job waiting for it reads this row; the answer's handler writes it.
CREATE TABLE requests (
    request_id     text PRIMARY KEY,
    analysis_id    uuid NOT NULL REFERENCES analyses (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('import', 'transcript')),
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    video_id       uuid,
    transcript_key text,
    language       text,
    code           text,
    message        text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    answered_at    timestamptz
);

-- The content cache: source id + transcript hash + engine/model/prompt version + options → an earlier result.
CREATE TABLE result_cache (
    cache_key  text PRIMARY KEY,
    result     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
