from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)

Groups = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]

# Column layout of each statement fetch_grouped_row has run, found from its first result.
_groups_of_sql: dict[str, Groups] = {}


def postgresql_database() -> BaseDatabaseWrapper | None:
    """The default database when it is PostgreSQL, whose dialect the raw-row reads speak;
    None on the SQLite demo, where they read through the ORM instead.

    A read keeps what this returns: every attribute of ``django.db.connection`` looks the
    thread's connection up again."""
    database = connections[DEFAULT_DB_ALIAS]
    return database if database.vendor == "postgresql" else None


def fetch_grouped_row(cursor: Any, sql: str, params: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Runs ``sql``, whose columns are named "<group>.<name>", and returns its first row as
    group → name → value (``{}`` when there is no row)."""
    cursor.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return {}
    groups = _groups_of(cursor, sql)
    return {group: {name: row[i] for name, i in columns} for group, columns in groups}


def fetch_grouped_rows(
    cursor: Any, sql: str, params: Sequence[Any]
) -> list[dict[str, dict[str, Any]]]:
    """``fetch_grouped_row``, every row."""
    cursor.execute(sql, params)
    rows = cursor.fetchall()
    groups = _groups_of(cursor, sql)
    return [
        {group: {name: row[i] for name, i in columns} for group, columns in groups} for row in rows
    ]


def _groups_of(cursor: Any, sql: str) -> Groups:
    groups = _groups_of_sql.get(sql)
    if groups is None:
        groups = _groups_of_sql[sql] = _groups([column[0] for column in cursor.description])
    return groups


def _groups(names: list[str]) -> Groups:
    grouped: dict[str, list[tuple[str, int]]] = {}
    for index, column in enumerate(names):
        group, _, name = column.partition(".")
        grouped.setdefault(group, []).append((name, index))
    return tuple((group, tuple(columns)) for group, columns in grouped.items())


def model_instance(model: type[M], values: Mapping[str, Any]) -> M:
    """A model instance of the given field values (a raw row's, by attname), as the ORM loads
    one; fields not given are deferred (read from the database on first access).

    Built as Django unpickles an instance (``Model.__reduce__``), without ``__init__``: its
    per-field loop and init signals cost the hot read several times its SQL's Python work,
    and no model built here has init signal receivers."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    state = instance._state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    return instance
