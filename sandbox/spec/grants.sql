-- What the functions' login role ({app}) may do, and nothing more; run by the owner of the schema
-- after schema.sql, locally at `sandbox up` and on Aurora by the deploy-time migration (both with
-- psycopg.sql: {app} and {db} are quoted identifiers). Idempotent.
--   consumer and direct path: INSERT an order, SELECT it back (a retry's check of what it holds);
--   reconcile: SELECT orders. Nothing on customers: the foreign key's check runs as the table's
--   owner. No CREATE or TEMP anywhere, no other database or schema; the role owns nothing.
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT ON DATABASE {db} TO {app};
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {app};
GRANT SELECT, INSERT ON orders TO {app};
