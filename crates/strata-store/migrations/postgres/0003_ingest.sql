-- Strata schema, version 3 (PostgreSQL): cheaper live ingest.
--
-- Two indexes keyed by random values (a line's sku, an order's customer)
-- cost a random B-tree page write per order line, which is most of what a
-- committed line costs on a large store. They served two rare checks:
-- * deleting a product named by lines: the product now records that lines
--   name it (`has_lines`), set by its first line, so later lines only read
--   the row (a write would put a random page in the log for every line);
-- * deleting a customer: the engine, which keeps each customer's orders,
--   names the orders to make anonymous (`Commit::anonymised_orders`).
DROP INDEX order_lines_sku;
DROP INDEX orders_customer;

ALTER TABLE products ADD COLUMN has_lines BOOLEAN NOT NULL DEFAULT false;

UPDATE products SET has_lines = true
WHERE (tenant_id, sku) IN (SELECT DISTINCT tenant_id, sku FROM order_lines);
