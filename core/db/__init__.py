"""Database layer: the adapter protocol, its Postgres/pgvector implementation, pooling, migrations."""
