"""One Alembic revision per SQL file; each runs its file unchanged (no downgrades:
the books are append-only)."""
