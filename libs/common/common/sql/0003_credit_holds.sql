-- The paying side of the credits saga (common.credits, ARCHITECTURE §5): one row per paid job.
-- Harmless in a schema that runs no paid jobs; the job runner's claim query reads it (a job with a row is
-- claimable only while its hold is 'granted'; a job without one, an import or a transcode, is unaffected).
--
--   requested ──▶ granted ──▶ settling ──▶ captured | released
--       │  │          └─────▶ expired        (billing released the hold by itself: the job failed)
--       │  ├────────────────▶ rejected       (billing refused: the job failed with billing's code)
--       │  └────────────────▶ expired
--       └───────────────────▶ settling       (canceled before billing answered: settled with 0)
-- The settle is written by the transition to 'settling', in the transaction that ends the job (exactly once).
CREATE TABLE IF NOT EXISTS credit_holds (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    hold_ref    text NOT NULL UNIQUE,
    account_id  uuid NOT NULL,
    producer    text NOT NULL,             -- the service that owns the job (its job events name it)
    amount      int NOT NULL CHECK (amount > 0),
    reason      text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'requested' CHECK (status IN
                    ('requested', 'granted', 'rejected', 'expired', 'settling', 'captured', 'released')),
    used        int,                       -- what the job reported using; NULL = the whole hold
    capture     int,                       -- what the settle asked billing to capture
    captured    int NOT NULL DEFAULT 0 CHECK (captured >= 0),  -- what billing says it captured
    code        text,                      -- billing's code when it rejected the hold
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (used BETWEEN 0 AND amount),
    CHECK (capture BETWEEN 0 AND amount)
);
CREATE INDEX IF NOT EXISTS credit_holds_open ON credit_holds (status)
    WHERE status IN ('requested', 'granted', 'settling');
