-- salesd: daily sales metrics (SPEC §3).  One row per recomputed day whose
-- metrics changed; the newest version wins.  Read with FINAL or through the
-- daily_sales_stats_latest view.
-- With clickhouse.cluster, salesd sends it ON CLUSTER with the Replicated form
-- of this engine under clickhouse.zookeeper_path (SPEC §9, lib/schema.c).
CREATE TABLE IF NOT EXISTS daily_sales_stats (
    date                Date,
    total_orders        UInt32,
    total_items_sold    UInt32,
    total_revenue       Decimal(15, 2),
    total_cost          Decimal(15, 2),
    total_profit        Decimal(15, 2),
    average_order_value Decimal(15, 2),
    computed_at         DateTime('UTC'),
    version             UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date) ORDER BY date
