-- salesd (optional): near-real-time runs.  A statement-level trigger on the
-- source tables calls pg_notify at the end of every statement that changes
-- them; salesd LISTENs on notify.channel, debounces (notify.debounce) and
-- runs.  Postgres delivers a notification only when the transaction commits
-- and folds identical ones within a transaction into one, so a bulk load
-- costs one notification per statement at most, delivered once.
--
-- The channel is the trigger's argument: 'salesd_changes' below; use the
-- same name as notify.channel in salesd.yaml (edit both lines if you choose
-- another).
CREATE OR REPLACE FUNCTION salesd_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS orders_salesd_notify ON orders;
CREATE TRIGGER orders_salesd_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION salesd_notify('salesd_changes');

DROP TRIGGER IF EXISTS order_items_salesd_notify ON order_items;
CREATE TRIGGER order_items_salesd_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_items
    FOR EACH STATEMENT EXECUTE FUNCTION salesd_notify('salesd_changes');

-- The tombstone table, when 010_tombstones.sql is loaded: its rows come from
-- the triggers above, so this only matters for tombstones written by hand.
DO $$
BEGIN
    IF to_regclass('salesd_tombstones') IS NOT NULL THEN
        DROP TRIGGER IF EXISTS salesd_tombstones_salesd_notify ON salesd_tombstones;
        CREATE TRIGGER salesd_tombstones_salesd_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON salesd_tombstones FOR EACH STATEMENT EXECUTE FUNCTION salesd_notify('salesd_changes');
    END IF;
END;
$$;
