-- salesd (optional): make changes that no surviving row can reveal visible
-- to the watermark.  Set postgres.tombstones_table to public.salesd_tombstones
-- after loading this file.  A tombstone carries the affected order's (old)
-- order_date as a timestamp; salesd maps it to a day in its own timezone.
CREATE TABLE IF NOT EXISTS salesd_tombstones (
    order_date timestamptz NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS salesd_tombstones_changed_at_idx ON salesd_tombstones (changed_at);

-- An order deleted, or moved to another order_date: its old day changes.
CREATE OR REPLACE FUNCTION salesd_tombstone_order() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO salesd_tombstones (order_date) VALUES (OLD.order_date);
        RETURN OLD;
    END IF;
    IF NEW.order_date IS DISTINCT FROM OLD.order_date THEN
        INSERT INTO salesd_tombstones (order_date) VALUES (OLD.order_date);
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS orders_salesd_tombstone ON orders;
CREATE TRIGGER orders_salesd_tombstone AFTER DELETE OR UPDATE OF order_date ON orders
    FOR EACH ROW EXECUTE FUNCTION salesd_tombstone_order();

-- An item deleted, or moved to another order: the old order's day changes.
-- When the old order is already gone (deleted in the same transaction), its
-- own tombstone covers the day.
CREATE OR REPLACE FUNCTION salesd_tombstone_item() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.order_id IS DISTINCT FROM OLD.order_id THEN
        INSERT INTO salesd_tombstones (order_date)
            SELECT o.order_date FROM orders o WHERE o.order_id = OLD.order_id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS order_items_salesd_tombstone ON order_items;
CREATE TRIGGER order_items_salesd_tombstone AFTER DELETE OR UPDATE OF order_id ON order_items
    FOR EACH ROW EXECUTE FUNCTION salesd_tombstone_item();
