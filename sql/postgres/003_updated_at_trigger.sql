-- salesd: bump updated_at on every UPDATE so the watermark sees the change.
-- Inserts take the column default, now().  clock_timestamp() rather than
-- now(): a long transaction's rows then carry the time of the change, which
-- the late-commit guard (SPEC §4) bounds from below by the transaction start.
CREATE OR REPLACE FUNCTION salesd_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS orders_touch_updated_at ON orders;
CREATE TRIGGER orders_touch_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION salesd_touch_updated_at();

DROP TRIGGER IF EXISTS order_items_touch_updated_at ON order_items;
CREATE TRIGGER order_items_touch_updated_at BEFORE UPDATE ON order_items
    FOR EACH ROW EXECUTE FUNCTION salesd_touch_updated_at();
