-- gateway: accounts, refresh tokens, revocations. The jobs read model reuses the common `jobs` table
-- (same shape as every service's jobs; filled from job.progress.v1 snapshots, highest seq wins).

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Opaque refresh tokens, stored as SHA-256 of the token (never the token). A family is one login session:
-- every rotation adds a row with the same family_id and marks its parent used.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    replaced_by uuid
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Revoked access tokens (kind = 'token', value = jti) and sessions (kind = 'family', value = family id, which
-- access tokens carry as `sid`). Rows are kept until everything they could block has expired.
CREATE TABLE revocations (
    kind       text NOT NULL CHECK (kind IN ('token', 'family')),
    value      text NOT NULL,
    user_id    uuid NOT NULL,
    reason     text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX revocations_expiry ON revocations (expires_at);

CREATE INDEX jobs_owner_status ON jobs (owner_id, status, created_at DESC);
CREATE INDEX jobs_owner_kind ON jobs (owner_id, kind, created_at DESC);
