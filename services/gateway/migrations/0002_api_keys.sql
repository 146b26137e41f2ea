-- Personal API keys (docs/gateway.md "API keys"). The key itself is never stored: only its SHA-256 (the secret
-- is 256 random bits, so a slow hash buys nothing), plus the public prefix shown in listings.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    key_hash     bytea NOT NULL UNIQUE,
    scope        text NOT NULL CHECK (scope IN ('read', 'full')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC) WHERE revoked_at IS NULL;
