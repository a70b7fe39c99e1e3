"""Querysets compiled to SQL once per process, for the reads every API request makes.

Building and compiling a queryset costs more CPU than running it on PostgreSQL: for the
current-session read it was most of the request. A PreparedQuery lets the ORM write the
SQL (so it stays correct for every database backend and every model change), keeps it,
and afterwards only swaps the parameter values.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: dict[str, tuple[int, ...]]
    names: tuple[str, ...]
    compiler: SQLCompiler
    converters: dict


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
        params = list(compiled.params)
        for name, slots in compiled.slots.items():
            value = _adapt(connection, values[name])
            for slot in slots:
                params[slot] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
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
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
        converters = compiler.get_converters(
            [col[0] for col in compiler.select[: compiler.col_count]]
        )
        compiled = _Compiled(sql, tuple(params), slots, names, compiler, converters)
        self._compiled[using] = compiled
        return compiled


def _adapt(connection, value: Any) -> Any:
    # The same adaptation the ORM applies while compiling, e.g. naive UTC text on SQLite.
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value
