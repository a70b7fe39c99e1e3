from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def fetch_named_row(cursor: Any) -> dict[str, Any] | None:
    """The cursor's next row as column name → value, the names the SQL gave its columns."""
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((column[0] for column in cursor.description), row, strict=True))


def prefixed(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The columns of ``row`` named ``<prefix>.<field>``, as field → value."""
    start = f"{prefix}."
    return {name[len(start) :]: value for name, value in row.items() if name.startswith(start)}


def model_instance(model: type[M], values: Mapping[str, Any]) -> M:
    """A model instance of the given field values (a raw row's), as if the ORM loaded it."""
    names = _in_model_order(model, frozenset(values))
    return model.from_db("default", names, [values[name] for name in names])


@cache
def _in_model_order(model: type[Model], names: frozenset[str]) -> tuple[str, ...]:
    # Model.from_db takes a subset of fields in the order the model declares them.
    return tuple(field.attname for field in model._meta.concrete_fields if field.attname in names)
