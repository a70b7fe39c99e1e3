from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)

Groups = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]

# Column layout of each statement fetch_grouped_row has run, found from its first result.
_groups_of_sql: dict[str, Groups] = {}
_model_order: dict[tuple[type[Model], frozenset[str]], tuple[str, ...]] = {}


def fetch_grouped_row(cursor: Any, sql: str, params: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Runs ``sql``, whose columns are named "<group>.<name>", and returns its first row as
    group → name → value (``{}`` when there is no row)."""
    cursor.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return {}
    groups = _groups_of_sql.get(sql)
    if groups is None:
        groups = _groups_of_sql[sql] = _groups([column[0] for column in cursor.description])
    return {group: {name: row[i] for name, i in columns} for group, columns in groups}


def _groups(names: list[str]) -> Groups:
    grouped: dict[str, list[tuple[str, int]]] = {}
    for index, column in enumerate(names):
        group, _, name = column.partition(".")
        grouped.setdefault(group, []).append((name, index))
    return tuple((group, tuple(columns)) for group, columns in grouped.items())


def model_instance(model: type[M], values: Mapping[str, Any]) -> M:
    """A model instance of the given field values (a raw row's), as if the ORM loaded it."""
    key = (model, frozenset(values))
    names = _model_order.get(key)
    if names is None:
        # Model.from_db takes a subset of fields in the order the model declares them.
        fields = model._meta.concrete_fields
        names = _model_order[key] = tuple(f.attname for f in fields if f.attname in values)
    return model.from_db("default", names, [values[name] for name in names])
