-- The orders database. An order references a customer, so an order for an unknown customer is
-- valid at the API but can never commit: the realistic poison message that ends in the DLQ.
CREATE TABLE customers (
    customer_id bigint PRIMARY KEY,
    name        text NOT NULL
);

CREATE TABLE orders (
    order_id       text PRIMARY KEY,                     -- the idempotency key: once, ever
    customer_id    bigint NOT NULL REFERENCES customers,
    payload        jsonb NOT NULL,                       -- the order as the API accepted it
    accepted_at    timestamptz NOT NULL,                 -- when the API said 202
    committed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    committed_node text NOT NULL DEFAULT current_setting('cluster_name')  -- shows failovers
);
CREATE INDEX orders_committed_at ON orders (committed_at);

INSERT INTO customers (customer_id, name)
SELECT n, 'customer ' || n FROM generate_series(1, 1000) AS n;
