-- salesd: the daemon's durable state (the watermark); the newest version wins.
CREATE TABLE IF NOT EXISTS salesd_state (
    name    String,
    value   String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY name
