"""Live updates (job snapshots, credited payments): this replica's WebSockets by user, fed from its exclusive bus
queue."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from common.auth import Principal
from common.events.billing import CreditsToppedUp
from common.events.jobs import JobProgress
from common.jobs import TERMINAL
from common.logging import get_logger

from .readmodel import snapshot_view

log = get_logger(__name__)

#: application close codes (4000-4999): the client should get a fresh token and reconnect
CLOSE_TOKEN_EXPIRED = 4001
CLOSE_TOKEN_REVOKED = 4003

RevokedCheck = Callable[[Principal], Awaitable[bool]]


class SocketHub:
    """Sockets per user, weakly held (a socket that went away is forgotten without bookkeeping)."""

    def __init__(self, *, send_timeout_s: float = 5.0, is_revoked: RevokedCheck | None = None) -> None:
        self.send_timeout_s = send_timeout_s
        self.is_revoked = is_revoked
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._by_user: dict[uuid.UUID, weakref.WeakSet[web.WebSocketResponse]] = {}
        self._principal: weakref.WeakKeyDictionary[web.WebSocketResponse, Principal] = (
            weakref.WeakKeyDictionary()
        )
        # job id -> (seq, terminal) of the newest snapshot pushed: drop stale or post-terminal ones
        self._seen: OrderedDict[uuid.UUID, tuple[int, bool]] = OrderedDict()
        self._seen_max = 50_000

    def add(self, ws: web.WebSocketResponse, principal: Principal) -> None:
        """Register an open socket of ``principal``."""
        self.sockets.add(ws)
        self._by_user.setdefault(principal.user_id, weakref.WeakSet()).add(ws)
        self._principal[ws] = principal

    def discard(self, ws: web.WebSocketResponse) -> None:
        """Forget a closed socket."""
        self.sockets.discard(ws)
        principal = self._principal.pop(ws, None)
        if principal is not None:
            group = self._by_user.get(principal.user_id)
            if group is not None:
                group.discard(ws)
                if not group:
                    del self._by_user[principal.user_id]

    def count(self, user_id: uuid.UUID | None = None) -> int:
        """Open sockets (of one user)."""
        if user_id is None:
            return len(self.sockets)
        return len(self._by_user.get(user_id, ()))

    def _fresh(self, event: JobProgress) -> bool:
        seen = self._seen.get(event.job_id)
        if seen is not None and (seen[1] or event.seq <= seen[0]):
            return False
        self._seen[event.job_id] = (event.seq, event.status in TERMINAL)
        self._seen.move_to_end(event.job_id)
        while len(self._seen) > self._seen_max:
            self._seen.popitem(last=False)
        return True

    async def on_job_progress(self, event: JobProgress) -> int:
        """Push a snapshot to every socket of its owner on this replica; return how many got it."""
        if event.owner_id not in self._by_user or not self._fresh(event):
            return 0
        return await self._push(event.owner_id, {"type": "job", "job": snapshot_view(event)})

    async def on_topped_up(self, event: CreditsToppedUp) -> int:
        """Tell the account's sockets on this replica that a payment was credited (a page shows the new balance)."""
        credits = {"order_id": event.order_id, "amount": event.amount, "balance_after": event.balance_after}
        return await self._push(event.account_id, {"type": "credits", "credits": credits})

    async def _push(self, user_id: uuid.UUID, message: dict[str, Any]) -> int:
        group = self._by_user.get(user_id)
        if not group:
            return 0
        sent = await asyncio.gather(*(self._send(ws, message) for ws in list(group)))
        return sum(sent)

    async def _send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> bool:
        if ws.closed:
            return False
        principal = self._principal.get(ws)
        if principal is not None and self.is_revoked is not None and await self.is_revoked(principal):
            await ws.close(code=CLOSE_TOKEN_REVOKED, message=b"token revoked")
            return False
        try:
            await asyncio.wait_for(ws.send_json(message), timeout=self.send_timeout_s)
            return True
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            # a client that does not read must not stall every other user's updates
            log.info("ws.send_failed", error=repr(exc))
            with contextlib.suppress(Exception):
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")
            return False

    async def close_revoked(self) -> int:
        """Close (4003) every socket whose token was revoked, e.g. by a logout on another replica; how many."""
        if self.is_revoked is None:
            return 0
        closed = 0
        for ws in list(self.sockets):
            principal = self._principal.get(ws)
            if ws.closed or principal is None or not await self.is_revoked(principal):
                continue
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_TOKEN_REVOKED, message=b"token revoked")
            closed += 1
        return closed

    async def close_all(self) -> None:
        """Close every socket with GOING_AWAY (shutdown: clients reconnect to another replica)."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
