"""The credits saga contract suite (ARCHITECTURE §5): every paid service runs it against itself.

Real Postgres, real RabbitMQ and the real billing service (``python -m billing worker`` and ``api`` as
subprocesses: common never imports a service). A service supplies its trivial paid job kind through a
``PaidJobAdapter`` (its producer name, its migrations, its job runner; the job function ``run`` follows the plan
in the job's params: succeed using N credits, fail, block until canceled, or do the work and then lose the worker
before the job's end is written). Each case leaves the books checked: for every account,
balance = sum(ledger) ≥ 0 and 0 ≤ held ≤ balance.

```python
from common.testing.saga import SAGA_CASES, PaidJobAdapter, SagaStack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("captions_saga")]

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(database_url, amqp_url, tmp_path_factory):
    async with SagaStack(CaptionsSagaAdapter(), database_url=database_url, amqp_url=amqp_url,
                         workdir=tmp_path_factory.mktemp("saga")) as s:
        yield s

@pytest.mark.parametrize("case", list(SAGA_CASES))
async def test_saga_contract(stack, case):
    await SAGA_CASES[case](stack)
```
(``libs/common/tests/integration/test_credits_saga.py`` runs it against the trivial kind.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType

import aiohttp
import asyncpg
import msgspec

from .. import db
from ..bus.base import Bus
from ..bus.rabbit import RabbitBus
from ..bus.router import Router
from ..credit_holds import CreditHold, HoldStatus
from ..credits import CreditCode, PriceList, credits_router, request_paid_job, use_credits
from ..credits import get_hold as get_credit_hold
from ..events.base import Event, decode
from ..events.gateway import UserRegistered
from ..jobrunner import JobContext, LeasedJobRunner
from ..jobs import ErrorCode, Job, JobFailure, get_job, request_cancel
from ..outbox import OutboxRelay
from .bus import RabbitBusFactory, delete_queues, service_queues, unique_name
from .process import ServiceProcess, free_port, process_env
from .waiting import wait_for

__all__ = ["FAILURE_CODE", "SAGA_CASES", "Books", "PaidJobAdapter", "Plan", "SagaStack"]

#: the code the trivial job fails with when told to
FAILURE_CODE = "saga.work_failed"
SIGNUP_GRANT = 100
BILLING_RETRY_DELAYS_MS = ("50", "200")


class Plan(StrEnum):
    """What the trivial paid job does when it runs (its ``plan`` param)."""

    SUCCEED = "succeed"  # uses ``used`` credits and succeeds
    FAIL = "fail"  # fails with FAILURE_CODE
    BLOCK = "block"  # waits until it is told to stop (cancel, expiry, shutdown)
    # attempt 1: the work, then it waits for its worker to die; later attempts: SUCCEED
    CRASH_AFTER_WORK = "crash_after_work"


class PaidJobAdapter:
    """How the suite drives a service's trivial paid job kind. Subclass it for a service.

    Override ``producer``/``kind``/``migrations_dir`` (and ``price_name``, a price billing lists); override
    ``runner`` to build the service's own runner (its ``on_failure`` hook, its settings) with ``handler=self.run``,
    and ``subscribe`` to wire billing's answers as the service's worker does. ``runs``, ``started`` and ``failures``
    are what the cases observe: keep them updated (``run`` and ``on_failure`` do).
    """

    producer = "sagatest"
    kind = "saga.trivial"
    migrations_dir: Path | None = None
    price_name = "analysis_per_video"

    def __init__(self) -> None:
        self.runs: Counter[uuid.UUID] = Counter()
        self.started: defaultdict[uuid.UUID, asyncio.Event] = defaultdict(asyncio.Event)
        self.failures: dict[uuid.UUID, str] = {}

    async def create(
        self, conn: asyncpg.Connection, *, owner_id: uuid.UUID, amount: int, plan: Plan, used: int, ttl_s: int
    ) -> Job:
        """Create the paid job the way the service's API does (in ``conn``'s transaction)."""
        return await request_paid_job(
            conn,
            kind=self.kind,
            owner_id=owner_id,
            params={"plan": str(plan), "used": used},
            amount=amount,
            reason=f"saga contract: {plan}",
            producer=self.producer,
            ttl_s=ttl_s,
        )

    async def run(self, ctx: JobContext) -> None:
        """The trivial job function: follows the plan in the job's params."""
        plan, used = Plan(ctx.job.params["plan"]), int(ctx.job.params.get("used", 0))
        self.runs[ctx.job.id] += 1
        if plan in (Plan.SUCCEED, Plan.CRASH_AFTER_WORK):
            await use_credits(ctx, used)
        self.started[ctx.job.id].set()
        if plan == Plan.FAIL:
            raise JobFailure(FAILURE_CODE, "the work failed")
        if plan == Plan.BLOCK or (plan == Plan.CRASH_AFTER_WORK and ctx.attempt == 1):
            # CRASH_AFTER_WORK: the work is done and recorded; its worker dies before the job's end is written
            await self._until_stopped(ctx)

    @staticmethod
    async def _until_stopped(ctx: JobContext) -> None:
        while not await asyncio.to_thread(ctx.cancel.wait, 0.5):
            pass  # the stop signal is a threading.Event, as CPU-bound work in a thread polls it
        ctx.raise_if_stopped()
        raise JobFailure(ErrorCode.CANCELED, "canceled by the user")

    async def on_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """The service's failure hook (its ``*.failed`` event): the suite checks every failed end reaches it."""
        self.failures[job.id] = failure.code

    async def subscribe(self, pool: asyncpg.Pool, bus: Bus, *, queue: str) -> None:
        """Subscribe billing's answers the way the service's worker does (its router includes ``credits_router``)."""
        router = Router(consumer=self.producer)
        router.include(credits_router(on_failure=self.on_failure))
        await router.subscribe(bus, queue=queue, pool=pool)

    def runner(self, pool: asyncpg.Pool, bus: Bus, *, lease_s: float, worker_id: str) -> LeasedJobRunner:
        """The service's runner for ``kind`` with ``on_failure`` (the suite starts, pauses and crashes it)."""
        return LeasedJobRunner(
            pool=pool,
            bus=bus,
            kinds=[self.kind],
            handler=self.run,
            producer=self.producer,
            concurrency=4,
            lease_s=lease_s,
            poll_interval_s=0.2,
            worker_id=worker_id,
            on_failure=self.on_failure,
        )


@dataclass(frozen=True)
class Books:
    """One account as billing's books show it."""

    balance: int
    held: int
    ledger_sum: int
    open_holds: int  # sum of billing's holds still held


class SagaStack:
    """The requester (the adapter's service, in-process) and the real billing service (subprocesses)."""

    def __init__(self, adapter: PaidJobAdapter, *, database_url: str, amqp_url: str, workdir: Path) -> None:
        self.adapter, self.database_url, self.amqp_url, self.workdir = (
            adapter,
            database_url,
            amqp_url,
            workdir,
        )
        tag = uuid.uuid4().hex[:10]
        self.schema, self.billing_schema = f"saga_{tag}", f"sagabill_{tag}"
        self.billing_queue = f"billing-{tag}"
        self.consumer = adapter.producer
        self.grant = SIGNUP_GRANT
        self._exit = contextlib.AsyncExitStack()
        self.runner: LeasedJobRunner | None = None
        self.relay: OutboxRelay | None = None

    # -- the stack -------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> SagaStack:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._exit.aclose()

    async def _start(self) -> None:
        ex = self._exit
        factory = RabbitBusFactory(self.amqp_url)
        ex.push_async_callback(factory.cleanup)
        ex.push_async_callback(self._delete_billing_queues)
        ex.push_async_callback(db.drop_schema, self.database_url, self.billing_schema)
        ex.push_async_callback(db.drop_schema, self.database_url, self.schema)
        await db.migrate(
            self.database_url,
            schema=self.schema,
            directories=[self.adapter.migrations_dir] if self.adapter.migrations_dir else [],
        )
        worker_port, api_port = free_port(), free_port()

        def env(port: int) -> dict[str, str]:
            return process_env(
                database_url=self.database_url,
                schema=self.billing_schema,
                bus=factory,
                queue=self.billing_queue,
                port=port,
                BUS_RETRY_DELAYS_MS=",".join(BILLING_RETRY_DELAYS_MS),
                HOLD_SWEEP_INTERVAL_S="0.2",
                SIGNUP_GRANT=str(self.grant),
                JWKS_URL="http://127.0.0.1:9/jwks.json",
            )

        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "billing", "migrate", env=env(worker_port)
        )
        assert await migrate.wait() == 0, "python -m billing migrate failed"
        self.billing_worker = ServiceProcess(
            "billing", env(worker_port), worker_port, self.workdir / "worker.log"
        )
        self.billing_api = ServiceProcess(
            "billing", env(api_port), api_port, self.workdir / "api.log", role="api"
        )
        ex.callback(self.billing_worker.stop)
        ex.callback(self.billing_api.stop)
        await asyncio.gather(self.billing_worker.start(), self.billing_api.start())

        self.pool = await db.create_pool(self.database_url, schema=self.schema, min_size=1, max_size=10)
        ex.push_async_callback(self.pool.close)
        self.billing_pool = await db.create_pool(
            self.database_url, schema=self.billing_schema, min_size=1, max_size=3
        )
        ex.push_async_callback(self.billing_pool.close)
        self.bus: RabbitBus = await factory(service=self.adapter.producer)
        self.http = aiohttp.ClientSession()
        ex.push_async_callback(self.http.close)
        self.prices = PriceList(self.http, f"http://127.0.0.1:{api_port}", ttl_s=30)

        await self.adapter.subscribe(self.pool, self.bus, queue=unique_name(self.consumer))
        await self.resume_relay()
        ex.push_async_callback(self.pause_relay)
        await self.resume_runner()
        ex.push_async_callback(self.pause_runner)

    async def _delete_billing_queues(self) -> None:
        await delete_queues(self.amqp_url, service_queues(self.billing_queue, BILLING_RETRY_DELAYS_MS))

    async def pause_runner(self) -> None:
        """Stop the service's runner (paid jobs stay queued)."""
        if self.runner is not None:
            await self.runner.stop(timeout_s=10)
            self.runner = None

    async def resume_runner(self) -> None:
        """Start the service's runner."""
        if self.runner is None:
            self.runner = self.adapter.runner(self.pool, self.bus, lease_s=5, worker_id=unique_name("main"))
            await self.runner.start()

    async def pause_relay(self) -> None:
        """Stop publishing the service's outbox."""
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None

    async def resume_relay(self) -> None:
        """Publish the service's outbox again."""
        if self.relay is None:
            self.relay = OutboxRelay(
                self.pool, self.bus, schema=self.schema, service=self.consumer, poll_interval_s=0.2
            )
            await self.relay.start()

    # -- driving -----------------------------------------------------------------------------------------------

    async def open_account(self) -> uuid.UUID:
        """A new user whose account holds the signup grant."""
        user = uuid.uuid4()
        await self.bus.publish(UserRegistered(user_id=user, email=f"{user.hex[:8]}@saga.test"))

        async def opened() -> bool:
            async with self.billing_pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT balance > 0 FROM accounts WHERE id = $1", user))

        await wait_for(opened, timeout=20, interval=0.05, message="the account is opened")
        return user

    async def create(
        self, owner: uuid.UUID, plan: Plan, *, units: int = 2, used: int = 0, ttl_s: int = 3600
    ) -> Job:
        """A paid job priced from billing's price list (``units`` of the adapter's price)."""
        amount = await self.prices.cost(self.adapter.price_name, units)
        async with self.pool.acquire() as conn, conn.transaction():
            job = await self.adapter.create(
                conn, owner_id=owner, amount=amount, plan=plan, used=used, ttl_s=ttl_s
            )
        if self.runner is not None:
            self.runner.wake()
        return job

    async def cancel(self, job_id: uuid.UUID) -> None:
        """What the service does on ``job.cancel_requested``."""
        async with self.pool.acquire() as conn, conn.transaction():
            await request_cancel(conn, job_id, producer=self.adapter.producer)

    async def job(self, job_id: uuid.UUID) -> Job:
        """The job now."""
        async with self.pool.acquire() as conn:
            job = await get_job(conn, job_id)
        assert job is not None
        return job

    async def hold(self, job_id: uuid.UUID) -> CreditHold:
        """The job's hold as the service knows it."""
        async with self.pool.acquire() as conn:
            hold = await get_credit_hold(conn, job_id)
        assert hold is not None
        return hold

    async def ended(self, job_id: uuid.UUID, status: str, code: str | None = None) -> Job:
        """Wait until the job ends; check how."""
        job = await wait_for(
            lambda: self._terminal(job_id), timeout=30, interval=0.05, message=f"job {job_id} ends {status}"
        )
        assert job is not None and job.status == status, job
        if code is not None:
            assert job.error is not None and job.error["code"] == code, job.error
        return job

    async def _terminal(self, job_id: uuid.UUID) -> Job | None:
        job = await self.job(job_id)
        return job if job.terminal else None

    async def hold_settles(self, job_id: uuid.UUID, status: HoldStatus) -> CreditHold:
        """Wait until the service's hold reaches ``status`` (billing answered)."""

        async def reached() -> CreditHold | None:
            hold = await self.hold(job_id)
            return hold if hold.status == status else None

        hold = await wait_for(reached, timeout=30, interval=0.05, message=f"hold of {job_id} is {status}")
        assert hold is not None
        return hold

    # -- billing's books (read from the harness side only) ------------------------------------------------------

    async def books(self, account: uuid.UUID) -> Books:
        """The account in billing's schema."""
        async with self.billing_pool.acquire() as conn:
            r = await conn.fetchrow(
                "SELECT a.balance, a.held,"
                " (SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account_id = a.id) AS ledger_sum,"
                " (SELECT coalesce(sum(amount), 0) FROM holds WHERE account_id = a.id AND status = 'held')"
                " AS open_holds FROM accounts a WHERE a.id = $1",
                account,
            )
        assert r is not None
        return Books(int(r["balance"]), int(r["held"]), int(r["ledger_sum"]), int(r["open_holds"]))

    async def captures(self, hold_ref: str) -> list[int]:
        """The capture entries billing posted for a hold (negative amounts)."""
        async with self.billing_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT amount FROM ledger_entries WHERE kind = 'capture' AND reference = $1", hold_ref
            )
        return [int(r["amount"]) for r in rows]

    async def billing_hold_status(self, hold_ref: str) -> str | None:
        """Billing's own status of a hold."""
        async with self.billing_pool.acquire() as conn:
            status: str | None = await conn.fetchval("SELECT status FROM holds WHERE hold_ref = $1", hold_ref)
        return status

    async def check_books(self, account: uuid.UUID, *, balance: int) -> None:
        """The invariants, once billing is quiet for the account: nothing held, balance as expected."""

        async def settled() -> Books | None:
            books = await self.books(account)
            return books if books.held == 0 else None

        books = await wait_for(settled, timeout=30, interval=0.05, message="nothing stays held")
        assert books is not None
        assert books.balance == books.ledger_sum == balance, books
        assert 0 <= books.open_holds == books.held <= books.balance, books
        async with self.billing_pool.acquire() as conn:
            broken = await conn.fetch(
                "SELECT a.id FROM accounts a WHERE a.balance <> (SELECT coalesce(sum(amount), 0)"
                " FROM ledger_entries e WHERE e.account_id = a.id) OR a.balance < 0 OR a.held < 0"
                " OR a.held > a.balance"
            )
        assert not broken, f"accounts break balance = sum(ledger) >= held >= 0: {broken}"

    # -- replaying events ---------------------------------------------------------------------------------------

    async def saga_events(self, hold_ref: str) -> list[Event]:
        """Every credits event of one hold, both directions, in the order each side wrote them."""
        events: list[Event] = []
        for pool in (self.pool, self.billing_pool):
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT body FROM outbox WHERE routing_key LIKE 'credits.%' ORDER BY seq"
                )
            events += [
                e for e in (decode(bytes(r["body"])) for r in rows) if getattr(e, "hold_ref", "") == hold_ref
            ]
        return events

    async def replay(self, events: list[Event]) -> None:
        """Publish copies (fresh ids: an inbox cannot dedupe them) and wait until both sides handled each."""
        copies = [msgspec.structs.replace(e, id=uuid.uuid4()) for e in events]
        for copy in copies:
            await self.bus.publish(copy)
        mine = [c.id for c in copies if c.producer == "billing"]
        theirs = [c.id for c in copies if c.producer != "billing"]

        async def handled() -> bool:
            async with self.pool.acquire() as conn:
                n = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", mine)
            async with self.billing_pool.acquire() as conn:
                m = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", theirs)
            return n == len(mine) and m == len(theirs)

        await wait_for(handled, timeout=30, interval=0.05, message="every replayed event was handled")

    async def publish_outbox_reversed(self) -> None:
        """Publish the unpublished outbox newest first (the relay must be paused), as a reordering broker would."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, body FROM outbox WHERE published_at IS NULL ORDER BY seq DESC"
            )
            for r in rows:
                await self.bus.publish(decode(bytes(r["body"])))
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )


# -- the cases -------------------------------------------------------------------------------------------------


async def granted_captures_what_was_used(stack: SagaStack) -> None:
    """Granted → the job runs at once → billing captures exactly what it used (less than the hold)."""
    owner = await stack.open_account()
    job = await stack.create(owner, Plan.SUCCEED, units=2, used=3)
    await stack.ended(job.id, "succeeded")
    hold = await stack.hold_settles(job.id, HoldStatus.CAPTURED)
    assert hold.amount > 3 and hold.capture == hold.captured == 3
    assert await stack.captures(hold.hold_ref) == [-3]
    assert stack.adapter.runs[job.id] == 1
    await stack.check_books(owner, balance=stack.grant - 3)


async def rejected_fails_without_running(stack: SagaStack) -> None:
    """Rejected → the job fails with billing's code and never runs."""
    owner = await stack.open_account()
    price = await stack.prices.price(stack.adapter.price_name)
    job = await stack.create(owner, Plan.SUCCEED, units=stack.grant // price + 1, used=1)
    await stack.ended(job.id, "failed", CreditCode.INSUFFICIENT)
    hold = await stack.hold_settles(job.id, HoldStatus.REJECTED)
    assert hold.code == CreditCode.INSUFFICIENT
    assert stack.adapter.runs[job.id] == 0
    assert stack.adapter.failures[job.id] == CreditCode.INSUFFICIENT
    await stack.check_books(owner, balance=stack.grant)


async def failure_releases_everything(stack: SagaStack) -> None:
    """The work fails → the job fails with its code → the hold is released in full."""
    owner = await stack.open_account()
    job = await stack.create(owner, Plan.FAIL)
    await stack.ended(job.id, "failed", FAILURE_CODE)
    hold = await stack.hold_settles(job.id, HoldStatus.RELEASED)
    assert hold.capture == 0 and await stack.captures(hold.hold_ref) == []
    assert stack.adapter.failures[job.id] == FAILURE_CODE
    await stack.check_books(owner, balance=stack.grant)


async def cancel_while_running_releases_everything(stack: SagaStack) -> None:
    """Canceled while running → canceled → released in full."""
    owner = await stack.open_account()
    job = await stack.create(owner, Plan.BLOCK)
    await asyncio.wait_for(stack.adapter.started[job.id].wait(), timeout=30)
    await stack.cancel(job.id)
    await stack.ended(job.id, "canceled", ErrorCode.CANCELED)
    hold = await stack.hold_settles(job.id, HoldStatus.RELEASED)
    assert await stack.captures(hold.hold_ref) == []
    await stack.check_books(owner, balance=stack.grant)


async def cancel_while_awaiting_settles_a_late_grant_with_zero(stack: SagaStack) -> None:
    """Canceled before billing answered, and billing hears the settle before the hold → the hold is released."""
    owner = await stack.open_account()
    await stack.pause_relay()
    try:
        job = await stack.create(owner, Plan.SUCCEED, used=1)
        await stack.cancel(job.id)
        await stack.publish_outbox_reversed()
    finally:
        await stack.resume_relay()
    await stack.ended(job.id, "canceled", ErrorCode.CANCELED)
    hold = await stack.hold_settles(job.id, HoldStatus.RELEASED)
    assert await stack.billing_hold_status(hold.hold_ref) == "released"
    assert stack.adapter.runs[job.id] == 0 and await stack.captures(hold.hold_ref) == []
    await stack.check_books(owner, balance=stack.grant)


async def hold_expiring_while_waiting_fails_the_job(stack: SagaStack) -> None:
    """Granted, but no worker takes the job before the hold expires → failed ``credits.hold_expired``."""
    owner = await stack.open_account()
    await stack.pause_runner()
    try:
        job = await stack.create(owner, Plan.SUCCEED, used=1, ttl_s=1)
        await stack.ended(job.id, "failed", CreditCode.HOLD_EXPIRED)
    finally:
        await stack.resume_runner()
    assert (await stack.hold(job.id)).status == HoldStatus.EXPIRED
    assert stack.adapter.runs[job.id] == 0
    assert stack.adapter.failures[job.id] == CreditCode.HOLD_EXPIRED
    await stack.check_books(owner, balance=stack.grant)


async def hold_expiring_while_running_stops_and_fails_the_job(stack: SagaStack) -> None:
    """The hold expires while the job runs → the work is told to stop, the job fails ``credits.hold_expired``."""
    owner = await stack.open_account()
    job = await stack.create(owner, Plan.BLOCK, ttl_s=2)
    await asyncio.wait_for(stack.adapter.started[job.id].wait(), timeout=30)
    await stack.ended(job.id, "failed", CreditCode.HOLD_EXPIRED)
    runner = stack.runner
    assert runner is not None
    await wait_for(
        lambda: job.id not in runner.running, timeout=30, interval=0.05, message="the work stopped"
    )
    assert (await stack.hold(job.id)).status == HoldStatus.EXPIRED
    assert stack.adapter.failures[job.id] == CreditCode.HOLD_EXPIRED
    await stack.check_books(owner, balance=stack.grant)


async def worker_dying_after_the_work_settles_once(stack: SagaStack) -> None:
    """The worker dies after the work, before the job's end is written → another worker redoes it; one capture."""
    owner = await stack.open_account()
    await stack.pause_runner()
    doomed_pool = await db.create_pool(stack.database_url, schema=stack.schema, min_size=1, max_size=4)
    doomed = stack.adapter.runner(doomed_pool, stack.bus, lease_s=1, worker_id=unique_name("doomed"))
    try:
        await doomed.start()
        job = await stack.create(owner, Plan.CRASH_AFTER_WORK, used=4)
        await asyncio.wait_for(stack.adapter.started[job.id].wait(), timeout=30)
        assert (await stack.hold(job.id)).used == 4  # the work happened
        doomed_pool.terminate()  # as SIGKILL would: nothing this worker holds reaches the database again
        await doomed.stop(timeout_s=10)
    finally:
        doomed_pool.terminate()
        await stack.resume_runner()
    await stack.ended(job.id, "succeeded")
    hold = await stack.hold_settles(job.id, HoldStatus.CAPTURED)
    assert stack.adapter.runs[job.id] == 2
    assert await stack.captures(hold.hold_ref) == [-4]
    await stack.check_books(owner, balance=stack.grant - 4)


async def duplicate_and_reordered_events_capture_once(stack: SagaStack) -> None:
    """Every event of a settled saga delivered again, newest first → nothing changes."""
    owner = await stack.open_account()
    job = await stack.create(owner, Plan.SUCCEED, used=2)
    await stack.ended(job.id, "succeeded")
    hold = await stack.hold_settles(job.id, HoldStatus.CAPTURED)
    events = await stack.saga_events(hold.hold_ref)
    assert {e.type for e in events} >= {
        "credits.hold_requested.v1",
        "credits.hold_granted.v1",
        "credits.settle_requested.v1",
        "credits.captured.v1",
    }
    await stack.replay(list(reversed(events)))
    assert (await stack.job(job.id)).status == "succeeded"
    assert (await stack.hold(job.id)).status == HoldStatus.CAPTURED
    assert stack.adapter.runs[job.id] == 1
    assert await stack.captures(hold.hold_ref) == [-2]
    await stack.check_books(owner, balance=stack.grant - 2)


SagaCase = Callable[[SagaStack], Awaitable[None]]

#: the contract: name → case
SAGA_CASES: dict[str, SagaCase] = {
    case.__name__: case
    for case in (
        granted_captures_what_was_used,
        rejected_fails_without_running,
        failure_releases_everything,
        cancel_while_running_releases_everything,
        cancel_while_awaiting_settles_a_late_grant_with_zero,
        hold_expiring_while_waiting_fails_the_job,
        hold_expiring_while_running_stops_and_fails_the_job,
        worker_dying_after_the_work_settles_once,
        duplicate_and_reordered_events_capture_once,
    )
}
