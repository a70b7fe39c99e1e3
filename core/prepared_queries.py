"""Querysets compiled to SQL once per process, for the reads every API request makes.

Building and compiling a queryset costs more CPU than running it on PostgreSQL. A
PreparedQuery lets the ORM write the SQL (so it stays correct for every database backend
and every model change), keeps it, and afterwards only swaps the parameter values.

On PostgreSQL it goes one step further and makes the SQL a server-side prepared statement
on each connection (``PREPARE`` once, then ``EXECUTE``): planning the current-session join
costs PostgreSQL more than running it (bench/results.md). The ORM's constant
parameters (states, JSON keys) are written into the statement as literals, so the cached
generic plan can still prove that a partial index such as ``one_open_session_per_driver``
applies. ``DATABASE_PREPARED_STATEMENTS=0`` turns this off, for poolers that share one
server connection between clients (PgBouncer in transaction mode).
"""

import hashlib
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

_PLACEHOLDER = re.compile(r"%%|%s")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: dict[str, tuple[int, ...]]
    names: tuple[str, ...]
    compiler: SQLCompiler
    converters: dict
    statement: "_Statement | None"


@dataclass(frozen=True)
class _Statement:
    """The query as a server-side prepared statement: ``prepare`` once per connection,
    then ``execute`` with the values in ``order``."""

    name: str
    prepare: str
    execute: str
    order: tuple[str, ...]


class PreparedQuery:
    """``build(**values)`` returns a ``.values()`` queryset. It is called once with the
    ``sentinels``: where those land among the compiled parameters is where later values go.
    Sentinels must be values no real call uses (e.g. a negative id)."""

    def __init__(self, build: Callable[..., QuerySet], **sentinels: Any) -> None:
        self.build = build
        self.sentinels = sentinels
        self._compiled: dict[str, _Compiled] = {}

    def first(self, using: str = "default", **values: Any) -> dict | None:
        compiled = self._compiled.get(using) or self._compile(using)
        connection = connections[using]
        with connection.cursor() as cursor:
            if compiled.statement is None:
                cursor.execute(compiled.sql, _fill(connection, compiled, values))
            else:
                _execute_prepared(connection, cursor, compiled.statement, values)
            raw_row = cursor.fetchone()
        if raw_row is None:
            return None
        (row,) = compiled.compiler.apply_converters([raw_row], compiled.converters)
        return dict(zip(compiled.names, row, strict=True))

    def _compile(self, using: str) -> _Compiled:
        queryset = self.build(**self.sentinels)[:1]
        query = queryset.query
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        connection = connections[using]
        slots = {}
        for name, sentinel in self.sentinels.items():
            adapted = _adapt(connection, sentinel)
            found = tuple(i for i, param in enumerate(params) if param == adapted)
            if not found:
                raise ValueError(f"sentinel {name}={sentinel!r} is not among the parameters")
            slots[name] = found
        # The column names as Django's own .values() iterable reads them: in the order
        # given when the query records it (annotations may sit anywhere in that order).
        if query.selected:
            names = tuple(query.selected)
        else:
            names = (*query.extra_select, *query.values_select, *query.annotation_select)
        converters = compiler.get_converters(
            [col[0] for col in compiler.select[: compiler.col_count]]
        )
        statement = None
        if connection.vendor == "postgresql" and settings.DATABASE_PREPARED_STATEMENTS:
            statement = _server_side(connection, sql, tuple(params), slots)
        compiled = _Compiled(sql, tuple(params), slots, names, compiler, converters, statement)
        self._compiled[using] = compiled
        return compiled


def _fill(connection, compiled: _Compiled, values: dict) -> list:
    params = list(compiled.params)
    for name, slots in compiled.slots.items():
        value = _adapt(connection, values[name])
        for slot in slots:
            params[slot] = value
    return params


def _server_side(connection, sql: str, params: tuple, slots: dict) -> _Statement:
    order = tuple(slots)
    number_of_slot = {
        slot: number for number, name in enumerate(order, start=1) for slot in slots[name]
    }
    constants = []
    position = -1

    def placeholder(match: re.Match) -> str:
        nonlocal position
        if match.group() == "%%":
            return "%%"
        position += 1
        if position in number_of_slot:
            return f"${number_of_slot[position]}"
        constants.append(params[position])
        return "%s"

    template = _PLACEHOLDER.sub(placeholder, sql)
    body = connection.ops.compose_sql(template, constants)
    name = "pq_" + hashlib.sha256(body.encode()).hexdigest()[:24]
    arguments = ", ".join(["%s"] * len(order))
    return _Statement(name, f"PREPARE {name} AS {body}", f"EXECUTE {name}({arguments})", order)


# Per Django connection: the DB-API connection the statements were prepared on, and their
# names. A reconnect brings a new DB-API connection, on which nothing is prepared yet.
_prepared_on: "weakref.WeakKeyDictionary[Any, tuple[Any, set[str]]]" = weakref.WeakKeyDictionary()


# The server lost the statement (someone ran DEALLOCATE or DISCARD ALL), or a migration
# changed the type of a column it returns ("cached plan must not change result type").
_STALE_STATEMENT_CODES = {"26000", "0A000"}


def _execute_prepared(connection, cursor, statement: _Statement, values: dict) -> None:
    adapted = [_adapt(connection, values[name]) for name in statement.order]
    _prepare_once(connection, cursor, statement)
    try:
        cursor.execute(statement.execute, adapted)
    except DatabaseError as error:
        stale = getattr(error.__cause__, "pgcode", None) in _STALE_STATEMENT_CODES
        if not stale or connection.in_atomic_block:
            raise  # in a transaction the error has aborted it: nothing to retry in
        cursor.execute("DEALLOCATE ALL")
        _prepared_on.pop(connection, None)
        _prepare_once(connection, cursor, statement)
        cursor.execute(statement.execute, adapted)


def _prepare_once(connection, cursor, statement: _Statement) -> None:
    raw_connection, prepared = _prepared_on.get(connection, (None, set()))
    if raw_connection is not connection.connection:
        prepared = set()
        _prepared_on[connection] = (connection.connection, prepared)
    if statement.name not in prepared:
        # PREPARE is not transactional: a later rollback does not undo it.
        cursor.execute(statement.prepare)
        prepared.add(statement.name)


def _adapt(connection, value: Any) -> Any:
    # The same adaptation the ORM applies while compiling, e.g. naive UTC text on SQLite.
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
