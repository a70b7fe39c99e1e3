from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def model_instance(model: type[M], values: Mapping[str, Any]) -> M:
    """A model instance of the given field values (a raw row's), as if the ORM loaded it."""
    names = _in_model_order(model, frozenset(values))
    return model.from_db("default", names, [values[name] for name in names])


@cache
def _in_model_order(model: type[Model], names: frozenset[str]) -> tuple[str, ...]:
    # Model.from_db takes a subset of fields in the order the model declares them.
    return tuple(field.attname for field in model._meta.concrete_fields if field.attname in names)
