-- streaming (delivery): webhook endpoints, their deliveries and every attempt, and the bucket-migration ledger.
-- Playback signing keys are not stored: they come from PLAYBACK_KEYS (rotated by configuration).

CREATE TABLE webhooks (
    id                   uuid PRIMARY KEY,
    owner_id             uuid NOT NULL,
    url                  text NOT NULL,
    events               text[] NOT NULL,
    -- needed in clear to sign every delivery (as with Stripe/Mux); shown to the owner once, at creation
    secret               text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    disabled_reason      text,
    disabled_at          timestamptz,
    -- consecutive failed attempts and since when, reset by any success: drives automatic disabling
    consecutive_failures int NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    last_success_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- the bus event this delivery announces; also the ``id`` receivers see (same for every endpoint)
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    -- the exact JSON body, so every retry is byte-identical (only the signature's timestamp changes)
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'canceled')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_status     int,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);

CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       int NOT NULL,
    started_at    timestamptz NOT NULL,
    status_code   int,
    latency_ms    int NOT NULL,
    error         text,
    next_retry_at timestamptz,
    UNIQUE (delivery_id, attempt)
);

-- One row per (source store, key) ever published as a migration request: re-runs publish nothing twice.
CREATE TABLE migrated_objects (
    source_url   text NOT NULL,
    source_key   text NOT NULL,
    owner_id     uuid NOT NULL,
    size_bytes   bigint NOT NULL DEFAULT 0,
    event_id     uuid NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_url, source_key)
);
