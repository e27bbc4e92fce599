-- salesd: canonical source tables (SPEC §1).  A shop whose schema differs
-- creates views with these names and columns instead.
CREATE TABLE IF NOT EXISTS orders (
    order_id    bigint PRIMARY KEY,
    customer_id bigint,
    status      text NOT NULL,
    order_date  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS order_items (
    order_item_id bigint PRIMARY KEY,
    order_id      bigint NOT NULL REFERENCES orders (order_id),
    product_id    bigint,
    quantity      integer NOT NULL CHECK (quantity >= 0),
    price         numeric(12, 2) NOT NULL,
    cost_price    numeric(12, 2) NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
