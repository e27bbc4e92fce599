-- salesd: the metrics as analysts should read them, one row per day.
-- With clickhouse.cluster, salesd sends it ON CLUSTER, its table qualified
-- with the database (SPEC §9, lib/schema.c).
CREATE VIEW IF NOT EXISTS daily_sales_stats_latest AS
SELECT
    date,
    total_orders,
    total_items_sold,
    total_revenue,
    total_cost,
    total_profit,
    average_order_value,
    computed_at,
    version
FROM daily_sales_stats FINAL
