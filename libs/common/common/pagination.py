"""One way to page a list: ``?limit=&cursor=``, an opaque keyset cursor, and ``{items, next_cursor}``.

A list endpoint declares its ``Paging`` on its route (``Route(..., paging=VIDEOS)``: the OpenAPI document gets
the ``limit`` and ``cursor`` parameters from it), reads ``page_request(request, VIDEOS, KeyType)``, asks its store
for ``limit + 1`` rows after ``request.after``, and answers ``page_of(rows, request, key=..., view=...)``.
A bad ``limit`` (not an integer, or outside 1..maximum) and a cursor that is not ours get the same answer
everywhere: 422 ``validation.invalid`` with ``field`` naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from .errors import CodedError, CommonCode

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")

#: a cursor is a few dozen bytes; anything much longer is not one of ours
_MAX_CURSOR = 512


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of a list, newest first; pass ``next_cursor`` as ``?cursor=`` for the next (null: the last page)."""

    items: list[T]
    next_cursor: str | None


class Items(msgspec.Struct, Generic[T], kw_only=True):
    """A whole list, unpaged: for lists a bound keeps short (a video's caption tracks, a project's renders)."""

    items: list[T]


@dataclass(frozen=True)
class Paging:
    """A list endpoint's page sizes: ``limit`` defaults to ``default`` and may be 1..``maximum``."""

    default: int = 50
    maximum: int = 100

    def parameters(self) -> list[dict[str, Any]]:
        """The OpenAPI query parameters ``limit`` and ``cursor``."""
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": self.maximum, "default": self.default},
                "description": "page size",
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "next_cursor of the previous page",
            },
        ]


@dataclass(frozen=True)
class PageRequest(Generic[K]):
    """What the client asked for: ``limit`` rows after the keyset position ``after`` (None: from the start)."""

    limit: int
    after: K | None


def _invalid(field: str, message: str) -> CodedError:
    return CodedError(CommonCode.VALIDATION, message, status=422, field=field)


def encode_cursor(key: Any) -> str:
    """An opaque cursor for the keyset position ``key`` (a value or a tuple of them: ints, strings, times, UUIDs)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(raw: str, type_: Any) -> Any:
    """The keyset position of a cursor; 422 ``validation.invalid`` (``field: cursor``) when it is not one of ours."""
    try:
        if len(raw) > _MAX_CURSOR:
            raise ValueError("too long")
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return msgspec.json.decode(data, type=type_)
    except (ValueError, binascii.Error, msgspec.DecodeError) as e:
        raise _invalid("cursor", "malformed cursor") from e


def parse_limit(raw: str | None, paging: Paging) -> int:
    """``?limit=`` as an int in 1..maximum (default when absent); 422 ``validation.invalid`` otherwise."""
    if raw is None or raw == "":
        return paging.default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= paging.maximum:
        raise _invalid("limit", f"limit must be an integer between 1 and {paging.maximum}")
    return limit


def page_request(request: web.Request, paging: Paging, key_type: Any) -> PageRequest[Any]:
    """The page a request asks for; the cursor decodes to ``key_type`` (e.g. ``tuple[datetime, UUID]``, or an
    ``Annotated`` int with bounds)."""
    cursor = request.query.get("cursor")
    return PageRequest(
        limit=parse_limit(request.query.get("limit"), paging),
        after=decode_cursor(cursor, key_type) if cursor else None,
    )


def page_of(
    rows: Sequence[R], request: PageRequest[Any], *, key: Callable[[R], Any], view: Callable[[R], T]
) -> Page[T]:
    """The page of ``rows`` (fetched with ``limit + 1``): ``view`` of the first ``limit``, and the next cursor."""
    shown = rows[: request.limit]
    more = len(rows) > request.limit and bool(shown)
    return Page(items=[view(r) for r in shown], next_cursor=encode_cursor(key(shown[-1])) if more else None)


async def fetch_newest_first(
    conn: asyncpg.Connection,
    query: str,
    *args: Any,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[asyncpg.Record]:
    """The rows of ``query`` (``SELECT ... WHERE ...`` with its parameters ``args``) newest first (``created_at DESC,
    id DESC``): ``limit`` of them after the keyset position ``after`` (the previous page's last row), if any."""
    params = list(args)
    if after is not None:
        params.extend(after)
        query += f" AND (created_at, id) < (${len(params) - 1}, ${len(params)})"
    params.append(limit)
    return list(await conn.fetch(f"{query} ORDER BY created_at DESC, id DESC LIMIT ${len(params)}", *params))
