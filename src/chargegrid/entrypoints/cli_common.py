"""What the ``chargegrid`` sub-commands share: errors, the database, and output.

Output is an aligned table for people, or with ``--json`` the records of the REST API (the same
field names, RFC 3339 UTC times, energy as decimal strings) for scripts. Expected failures raise
:class:`CliError`; :func:`chargegrid.entrypoints.cli.main` prints its message to stderr and exits
with its code, without a traceback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from chargegrid.entrypoints import settings

if TYPE_CHECKING:
    from chargegrid.adapters.storage.store import SqlStore

FAILED = 1  # the command could not do what was asked (unknown record, bad file, database down)
USAGE = 2  # the command line or a setting is wrong (as argparse's own exit code)


class CliError(Exception):
    """An expected failure: ``chargegrid: <message>`` on stderr, then ``details`` one a line."""

    def __init__(self, message: str, code: int = FAILED, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.details = list(details)


def where(url: str) -> str:
    """A database URL without its credentials, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('@')[-1]}"


@asynccontextmanager
async def open_db(conf: settings.Settings) -> AsyncIterator[SqlStore]:
    """The store of ``conf.db``, migrated to the current schema, closed at the end."""
    from chargegrid.adapters.storage.store import open_store
    from chargegrid.bootstrap import prepare_database

    missing = _missing_directory(conf.db)
    if missing is not None:
        raise CliError(f"cannot open the database {where(conf.db)}: no directory {missing}")
    try:
        store = await open_store(await prepare_database(conf.db))
    except Exception as exc:  # the driver's own errors: a bad URL, refused, no such file...
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]  # not SQLAlchemy's "see..."
        raise CliError(f"cannot open the database {where(conf.db)}: {reason}") from exc
    try:
        yield store
    finally:
        await store.close()


def _missing_directory(url: str) -> Path | None:
    """The directory an SQLite file would be in, if it does not exist (SQLite would say only
    "unable to open database file")."""
    scheme, _, rest = url.partition("://")
    path = rest[1:].partition("?")[0] if rest.startswith("/") else ""
    if not scheme.startswith("sqlite") or path in ("", ":memory:"):
        return None
    parent = Path(path).parent
    return None if parent.is_dir() else parent


def text(value: object) -> str:
    """A table cell: ``-`` for nothing, times to the second in UTC."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return ",".join(text(v) for v in value) or "-"
    return str(value)


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Columns aligned with two spaces between them; the header row first."""
    table = [list(header)] + [[text(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def print_fields(pairs: Iterable[tuple[str, object]]) -> None:
    """``name  value`` lines, the values aligned."""
    listed = [(name, text(value)) for name, value in pairs]
    width = max((len(name) for name, _ in listed), default=0)
    for name, value in listed:
        print(f"{name.ljust(width)}  {value}")


def print_json(data: Any) -> None:
    """Records (msgspec Structs, lists of them, dicts) as indented JSON."""
    print(json.dumps(msgspec.to_builtins(data), indent=2))


def parse_time(value: str, name: str) -> datetime:
    """An RFC 3339 time with an offset (``2030-01-31T00:00:00Z``); a usage error otherwise."""
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise CliError(
            f"{name}: {value!r} is not an RFC 3339 time with an offset, "
            "such as 2030-01-31T00:00:00Z",
            USAGE,
        )
    return parsed
