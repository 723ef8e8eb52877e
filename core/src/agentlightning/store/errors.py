"""Store errors: the same types whichever backend (memory, SQLite, HTTP client) raised them.

They subclass the built-in types upstream raised (``ValueError``, ``RuntimeError``), so code written against
upstream v0.3 that catches those keeps working.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every store error."""


class NotFoundError(StoreError, ValueError):
    """A rollout, attempt or resources id that the store does not know (where the operation needs it to exist)."""


class InvalidRequestError(StoreError, ValueError):
    """Arguments the store refuses: a bad limit, an unknown sort field, a malformed filter, an invalid status."""


class SpansEvictedError(StoreError, RuntimeError):
    """The spans of this rollout were dropped by the retention policy and cannot be queried any more."""


class StoreClosedError(StoreError, RuntimeError):
    """The store was closed."""


class StoreUnavailableError(StoreError, ConnectionError):
    """The store could not be reached (a remote server down after every retry, a locked file past the deadline)."""


class StoreCorruptError(StoreError, RuntimeError):
    """The backing file or database is not a store this version can open (wrong format, newer schema)."""


ERROR_TYPES = {
    cls.__name__: cls
    for cls in (
        StoreError,
        NotFoundError,
        InvalidRequestError,
        SpansEvictedError,
        StoreClosedError,
        StoreUnavailableError,
        StoreCorruptError,
    )
}
"""Error classes by name, for transports that carry the error type across a process boundary."""
