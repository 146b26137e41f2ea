-- captions: its own tables live here (the common outbox, inbox and jobs tables are created first).
SELECT 1;
