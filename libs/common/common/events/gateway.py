"""Events produced by the gateway."""

from __future__ import annotations

import uuid

from .base import Event


class UserRegistered(Event, tag="user.registered.v1", frozen=True, kw_only=True):
    """A new account exists."""

    user_id: uuid.UUID
    email: str
