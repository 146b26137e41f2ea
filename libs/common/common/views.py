"""API views (msgspec Structs) built from store records and rows: each field taken by name, then validated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar

import asyncpg
import msgspec

V = TypeVar("V", bound=msgspec.Struct)
_MISSING: Any = object()


def view_of(view: type[V], source: object, /, **overrides: Any) -> V:
    """``view`` with each field from ``source``'s attribute (a mapping's or row's key) of that name; ``overrides`` win.

    A field ``source`` lacks keeps its default. Values are converted as msgspec decodes them (``str`` to a
    ``StrEnum``, a dict to a Struct, a tuple to a list) and validated, so a view never holds what its type
    does not allow.
    """
    get: Callable[[str, Any], Any]
    if isinstance(source, Mapping | asyncpg.Record):
        get = source.get
    else:

        def get(name: str, default: Any) -> Any:
            return getattr(source, name, default)

    data: dict[str, Any] = {}
    for field in msgspec.structs.fields(view):
        value = overrides[field.name] if field.name in overrides else get(field.name, _MISSING)
        if value is not _MISSING:
            data[field.encode_name] = value
    return msgspec.convert(data, view)


class View(msgspec.Struct, kw_only=True):
    """An API body that shows a store record: ``Sub.of(record)`` takes each field from the record by name."""

    @classmethod
    def of(cls, source: object) -> Self:
        """The view of ``source`` (see ``view_of``)."""
        return view_of(cls, source)
