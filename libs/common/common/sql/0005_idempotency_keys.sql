-- Idempotency-Key requests (common.idempotency): the first answer to a (user, key), replayed to its retries.
-- A row without a status is in flight: its holder renews locked_until while it runs; a row whose holder died
-- (locked_until passed) or whose 24 h are over (expires_at) is taken over by the next request with that key.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner_id     uuid NOT NULL,
    key          text NOT NULL,
    token        uuid NOT NULL,          -- the holder's claim: only it may record the answer or let the key go
    request_hash text,                   -- method, route, path parameters and body (set when the answer is)
    status       int,                    -- the answer's status; NULL while the first request runs
    headers      jsonb,
    body         bytea,
    locked_until timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (owner_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);
