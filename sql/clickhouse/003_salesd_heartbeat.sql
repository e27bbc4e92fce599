-- salesd: liveness, one row per instance; the newest ts wins.
-- With clickhouse.cluster, salesd sends it ON CLUSTER with the Replicated form
-- of this engine under clickhouse.zookeeper_path (SPEC §9, lib/schema.c).
CREATE TABLE IF NOT EXISTS salesd_heartbeat (
    instance     String,
    ts           DateTime('UTC'),
    state        String,
    last_success DateTime('UTC'),
    next_run     DateTime('UTC')
) ENGINE = ReplacingMergeTree(ts)
ORDER BY instance
