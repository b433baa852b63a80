"""PostgreSQL at the edge: embedded server, pool, migrations, repositories."""
