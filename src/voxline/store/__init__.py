"""Persistence: SQLAlchemy models, Alembic migrations and one repository module per resource.

Repository functions take an `AsyncSession` from `Database.transaction()`; the few used
outside a request (`consume_relay_token`, idempotency) take the `Database`
and run their own short transactions.
"""
