"""Postgres fixtures (filled in with the catalog)."""
