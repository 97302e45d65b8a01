"""PostgreSQL backend that sets the tenant for row-level security per transaction (ENGINE "config.db.postgresql")."""
