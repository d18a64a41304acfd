"""The warehouse owns all SQL: catalogs, schema, loads, snapshots and queries."""
