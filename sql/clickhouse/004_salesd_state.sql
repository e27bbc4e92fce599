-- salesd: the daemon's durable state (the watermark); the newest version wins.
-- With clickhouse.cluster, salesd sends it ON CLUSTER with the Replicated form
-- of this engine under clickhouse.zookeeper_path (SPEC §9, lib/schema.c).
CREATE TABLE IF NOT EXISTS salesd_state (
    name    String,
    value   String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name
