"""Property: random sequences of grants, holds, settles, expiries, adjustments, top-ups, refunds and duplicates,
applied to the real Postgres through the handler code path, keep every invariant and match a simple model."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import handlers, ledger, store
from billing.config import BillingSettings
from common import db
from common.bus.base import Delivery
from common.errors import CodedError
from common.events.base import Event
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered

from ..conftest import MIGRATIONS

USERS = [uuid.UUID(int=i + 1) for i in range(3)]
GRANT = 50

register = st.tuples(st.just("register"), st.integers(0, 2))
hold = st.tuples(st.just("hold"), st.integers(0, 2), st.integers(0, 5), st.integers(1, 40))
settle = st.tuples(st.just("settle"), st.integers(0, 2), st.integers(0, 5), st.integers(0, 45))
expire = st.tuples(st.just("expire"))
adjust = st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-30, 30))
topup = st.tuples(st.just("topup"), st.integers(0, 2), st.integers(10, 60))
refund = st.tuples(st.just("refund"), st.integers(0, 5))
step = st.tuples(
    st.one_of(register, hold, settle, expire, adjust, topup, refund),
    st.sampled_from(["once", "redeliver", "resend"]),
)


@dataclass
class Ref:
    account: int
    state: str  # awaiting | held | final | rejected
    amount: int = 0
    capture: int = 0  # requested while awaiting the hold; what was captured once final
    refunded: bool = False


@dataclass
class Model:
    """What the books must say, computed the obvious way."""

    balance: dict[int, int] = field(default_factory=dict)
    held: dict[int, int] = field(default_factory=dict)
    refs: dict[int, Ref] = field(default_factory=dict)

    def register(self, u: int) -> None:
        if u not in self.balance:
            self.balance[u], self.held[u] = GRANT, 0

    def available(self, u: int) -> int:
        return self.balance[u] - self.held[u] if u in self.balance else -1

    def hold(self, u: int, r: int, amount: int) -> None:
        ref = self.refs.get(r)
        if ref is None:
            if self.available(u) >= amount:
                self.refs[r] = Ref(u, "held", amount)
                self.held[u] += amount
            else:
                self.refs[r] = Ref(u, "rejected")
        elif ref.state == "awaiting" and ref.account == u:
            if self.available(u) >= amount:
                ref.capture = min(ref.capture, amount)
                self.balance[u] -= ref.capture
                ref.state = "final"
            else:
                ref.state = "rejected"

    def settle(self, u: int, r: int, capture: int) -> None:
        ref = self.refs.get(r)
        if ref is None:
            self.refs[r] = Ref(u, "awaiting", capture=capture)
        elif ref.state == "held" and ref.account == u:
            ref.capture = min(capture, ref.amount)
            self.balance[u] -= ref.capture
            self.held[u] -= ref.amount
            ref.state = "final"

    def expire(self) -> None:
        for ref in self.refs.values():
            if ref.state == "held":
                self.held[ref.account] -= ref.amount
                ref.state, ref.capture = "final", 0

    def topup(self, u: int, credits: int) -> None:
        self.balance[u] += credits

    def refund(self, r: int) -> bool:
        """A full refund of what the hold captured, once; False when there is nothing to refund."""
        ref = self.refs.get(r)
        if ref is None or ref.state != "final" or ref.capture == 0:
            return False
        if not ref.refunded:
            self.balance[ref.account] += ref.capture
            ref.refunded = True
        return True

    def adjust(self, u: int, amount: int) -> bool:
        if u not in self.balance or amount == 0 or self.balance[u] + amount < self.held[u]:
            return False
        self.balance[u] += amount
        return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
async def test_random_histories_keep_every_invariant(database_url: str, steps: list) -> None:
    schema = f"billing_p{uuid.uuid4().hex[:10]}"
    await db.migrate(database_url, schema=schema, directories=[MIGRATIONS])
    pool = await db.create_pool(database_url, schema=schema, max_size=4)
    try:
        # the model rejects a hold for an unopened account at once; the bus-retry window for that case is
        # covered by test_ledger's retry tests
        cfg = BillingSettings(
            database_url=database_url, db_schema=schema, signup_grant=GRANT, hold_account_wait_attempts=0
        )
        handler = handlers.router(cfg).handler(pool=pool)
        model = Model()

        async def deliver(how: str, event_class: type[Event], **fields: Any) -> None:
            event, resend = event_class(**fields), event_class(**fields)
            first = handler(event, Delivery(routing_key=event.type))
            if how == "once":
                await first
            elif how == "redeliver":  # the same message twice, concurrently
                await asyncio.gather(
                    first, handler(event, Delivery(routing_key=event.type, redelivered=True))
                )
            else:  # the same request re-published under a new event id
                await first
                await handler(resend, Delivery(routing_key=resend.type))

        for op, how in steps:
            kind = op[0]
            if kind == "register":
                u = op[1]
                await deliver(how, UserRegistered, user_id=USERS[u], email="p@example.test")
                model.register(u)
            elif kind == "hold":
                _, u, r, amount = op
                await deliver(how, CreditsHoldRequested, hold_ref=f"r{r}", account_id=USERS[u], amount=amount)
                model.hold(u, r, amount)
            elif kind == "settle":
                _, u, r, capture = op
                await deliver(
                    how, CreditsSettleRequested, hold_ref=f"r{r}", account_id=USERS[u], capture=capture
                )
                model.settle(u, r, capture)
            elif kind == "expire":
                await handlers.sweep_holds(pool, batch=3, now=datetime.now(UTC) + timedelta(hours=2))
                model.expire()
            elif kind == "topup":
                _, u, credits = op
                if u in model.balance:  # a paid order of a registered user; the provider may notify twice
                    async with db.transaction(pool) as conn:
                        order = await ledger.create_order(
                            conn, account_id=USERS[u], credits=credits, policy=ledger.TopupPolicy()
                        )
                    key = f"pk_{uuid.uuid4().hex}"

                    async def pay(
                        order_id: str = order.order_id, price: int = order.price, key: str = key
                    ) -> None:
                        async with db.transaction(pool) as conn:
                            await ledger.confirm_payment(
                                conn, order_id=order_id, payment_key=key, amount=price, status="DONE"
                            )

                    if how == "redeliver":
                        await asyncio.gather(pay(), pay())
                    else:
                        await pay()
                        if how == "resend":
                            await pay()
                    model.topup(u, credits)
            elif kind == "refund":
                _, r = op
                expected = model.refund(r)
                for _ in range(1 if how == "once" else 2):  # a refund asked twice gives back once
                    try:
                        async with db.transaction(pool) as conn:
                            await ledger.refund(conn, hold_ref=f"r{r}", amount=None, reason="prop")
                        assert expected, f"refund of r{r} should have been refused"
                    except CodedError:
                        assert not expected, f"refund of r{r} should have been accepted"
            else:
                _, u, amount = op
                ok = model.adjust(u, amount)
                try:
                    async with db.transaction(pool) as conn:
                        await ledger.adjust(conn, account_id=USERS[u], amount=amount, reason="prop")
                    assert ok, f"adjust {amount} on user {u} should have been refused"
                except CodedError:
                    assert not ok, f"adjust {amount} on user {u} should have been accepted"

            async with pool.acquire() as conn:
                assert await store.invariant_violations(conn) == []
                for u, expected in model.balance.items():
                    account = await store.get_account(conn, account_id=USERS[u])
                    assert account is not None
                    assert (account.balance, account.held) == (expected, model.held[u]), (op, how)
    finally:
        await pool.close()
        await db.drop_schema(database_url, schema)
