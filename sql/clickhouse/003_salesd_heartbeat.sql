-- salesd: liveness, one row per instance; the newest ts wins.
CREATE TABLE IF NOT EXISTS salesd_heartbeat (
    instance     String,
    ts           DateTime('UTC'),
    state        String,
    last_success DateTime('UTC'),
    next_run     DateTime('UTC')
) ENGINE = ReplacingMergeTree(ts)
ORDER BY instance
