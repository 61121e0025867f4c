"""Alembic migrations of the hub's own PostgreSQL tables, policies, views, functions and grants.

Run through :mod:`warehouse.migrate` (``hub warehouse upgrade``), never by hand.
"""
