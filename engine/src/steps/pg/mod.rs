//! PostgreSQL: `sql` through tokio-postgres, `pg.dump` / `pg.restore` through the real client binaries.
