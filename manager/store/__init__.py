"""PostgreSQL access: the connection pool, migrations and named queries."""
