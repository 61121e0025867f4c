"""The warehouse: engine (DuckDB or PostgreSQL from one URL), layered models, golden tables, quarantine."""
