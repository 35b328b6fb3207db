"""Errors of the storage adapter.

Database drivers raise their own exceptions (``sqlite3``, ``asyncpg``, wrapped by SQLAlchemy); the
store translates them at the boundary, with ``raise ... from exc`` so the original stays on
``__cause__``, into the errors the :class:`~chargegrid.service.ports.Store` port documents, which
this module re-exports. Callers above the adapter catch only these.
"""

from __future__ import annotations

from chargegrid.service.ports import IntegrityError, StorageError

__all__ = ["IntegrityError", "StorageError"]
