-- Leases of the jobs a worker runs (common.jobrunner.LeasedJobRunner); harmless in a schema that runs no jobs.

-- Which worker runs a job and until when. A dead worker's lease expires and another worker takes the job over;
-- ``attempts`` counts claims (a clean hand-back on shutdown gives its attempt back). A queued job whose lease
-- lies in the future is waiting out a retry delay.
CREATE TABLE IF NOT EXISTS job_runs (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    worker      text NOT NULL,
    lease_until timestamptz NOT NULL,
    attempts    int NOT NULL DEFAULT 0,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs (created_at) WHERE status IN ('queued', 'running');

-- Wake runners at once: a job became queued ('queued <kind>') or a cancel was requested ('cancel <id>').
-- The channel is per schema (NOTIFY is per database), like the outbox relay's.
CREATE OR REPLACE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'queued') THEN
        PERFORM pg_notify('jobs_' || TG_TABLE_SCHEMA, 'queued ' || NEW.kind);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.cancel_requested AND NOT OLD.cancel_requested THEN
        PERFORM pg_notify('jobs_' || TG_TABLE_SCHEMA, 'cancel ' || NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS jobs_notify ON jobs;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF status, cancel_requested ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_notify();
