"""Persistence: SQLAlchemy models, Alembic migrations and one repository module per resource.

Repository functions take an `AsyncSession` from `Database.transaction()` (named `db`: a
"session" is a call's record); the few used
outside a request (`use_token_once`, idempotency) take the `Database`
and run their own short transactions.
"""
