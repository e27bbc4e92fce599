-- salesd: indexes the run's queries are shaped for.  order_date drives the
-- per-day aggregate (a range scan per affected day), order_items(order_id)
-- the per-order item lookup, updated_at the "changed since watermark" scans.
CREATE INDEX IF NOT EXISTS orders_order_date_idx ON orders (order_date);
CREATE INDEX IF NOT EXISTS orders_updated_at_idx ON orders (updated_at);
CREATE INDEX IF NOT EXISTS order_items_order_id_idx ON order_items (order_id);
CREATE INDEX IF NOT EXISTS order_items_updated_at_idx ON order_items (updated_at);
