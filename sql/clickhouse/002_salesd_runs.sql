-- salesd: one row per run, skipped runs included.
-- With clickhouse.cluster, salesd sends it ON CLUSTER with the Replicated form
-- of this engine under clickhouse.zookeeper_path (SPEC §9, lib/schema.c).
CREATE TABLE IF NOT EXISTS salesd_runs (
    run_id          String,
    instance        String,
    trigger         String,
    started_at      DateTime('UTC'),
    finished_at     DateTime('UTC'),
    status          String,
    days_recomputed UInt32,
    days_written    UInt32,
    error           String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(started_at) ORDER BY (started_at, instance)
