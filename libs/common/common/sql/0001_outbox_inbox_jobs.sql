-- Shared tables every service schema gets (applied before the service's own migrations).

-- Transactional outbox: written in the same transaction as the state change it announces.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    body         bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     int NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Inbox: ids of events whose effects are committed; makes handlers idempotent.
CREATE TABLE inbox (
    event_id   uuid NOT NULL,
    consumer   text NOT NULL,
    event_type text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, consumer)
);

-- The shared job model (ARCHITECTURE §4); each service keeps the jobs it runs.
CREATE TABLE jobs (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL,
    owner_id   uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    progress   real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
    stage      text NOT NULL DEFAULT '',
    error      jsonb,
    result     jsonb,
    params     jsonb NOT NULL DEFAULT '{}'::jsonb,
    seq        int NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_owner ON jobs (owner_id, created_at DESC);
CREATE INDEX jobs_status ON jobs (kind, status);
