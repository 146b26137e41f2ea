"""The service kit: an aiohttp app wired with its resources via ``cleanup_ctx``, and the ``python -m <svc>`` CLI."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import asyncpg
from aiohttp import web

from . import db
from .auth import VERIFIER, JWKSVerifier
from .bus import Bus, create_bus
from .http import DEPENDENCIES, add_readiness_check, create_base_app
from .logging import configure_logging, get_logger
from .outbox import OutboxRelay
from .runtime import Periodic
from .settings import ServiceSettings
from .storage import ObjectStore, create_store

log = get_logger(__name__)

SETTINGS: web.AppKey[ServiceSettings] = web.AppKey("settings", ServiceSettings)
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("db_pool", asyncpg.Pool)
BUS: web.AppKey[Bus] = web.AppKey("bus", Bus)
STORE: web.AppKey[ObjectStore] = web.AppKey("store", ObjectStore)
RELAY: web.AppKey[OutboxRelay] = web.AppKey("outbox_relay", OutboxRelay)
HTTP_CLIENT: web.AppKey[aiohttp.ClientSession] = web.AppKey("http_client", aiohttp.ClientSession)
ROLE: web.AppKey[str] = web.AppKey("role", str)

S = TypeVar("S", bound=ServiceSettings)
CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def build_app(
    settings: ServiceSettings,
    *,
    role: str = "api",
    use_db: bool = True,
    use_bus: bool = True,
    use_store: bool = True,
    use_auth: bool = True,
    run_relay: bool = True,
    bus: Bus | None = None,
    store: ObjectStore | None = None,
    verifier: JWKSVerifier | None = None,
    max_body_bytes: int | None = None,
) -> web.Application:
    """An app with the standard endpoints and the resources this service uses, opened in order on startup.

    Injected ``bus``/``store``/``verifier`` instances (tests) are used as they are and not closed by the app.
    Services append their own ``cleanup_ctx`` (subscriptions, workers) after calling this.
    """
    app = create_base_app(service=settings.service, max_body_bytes=max_body_bytes or settings.max_body_bytes)
    app[SETTINGS] = settings
    app[ROLE] = role
    if use_db:
        app.cleanup_ctx.append(_db_ctx(settings))
    if use_bus:
        # not critical: while the broker is away the outbox keeps the events and requests are still served
        app.cleanup_ctx.append(
            resource_ctx(BUS, "rabbitmq", bus, lambda: _started_bus(settings), critical=False)
        )
    if use_store:
        app.cleanup_ctx.append(resource_ctx(STORE, "storage", store, lambda: create_store(settings)))
    app.cleanup_ctx.append(_client_ctx)
    if use_auth:
        app.cleanup_ctx.append(_auth_ctx(settings, verifier))
    if use_db and use_bus and run_relay:
        app.cleanup_ctx.append(_relay_ctx(settings))
    app.cleanup_ctx.append(_probe_ctx(settings))
    return app


def _probe_ctx(settings: ServiceSettings) -> CleanupCtx:
    """Check every dependency every ``health_probe_interval_s`` (every second while one is down): outages are
    logged when they start and end, and ``reelforge_dependency_up`` is current without anyone polling ``/readyz``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        probe = Periodic(
            "dependency_probe",
            settings.health_probe_interval_s,
            app[DEPENDENCIES].probe,
            service=settings.service,
        )
        probe.start()
        yield
        await probe.stop()

    return ctx


def _db_ctx(settings: ServiceSettings) -> CleanupCtx:
    """The Postgres pool (``POOL``), checked by ``/readyz``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await db.create_pool(
            settings.database_url,
            schema=settings.schema,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            idle_s=settings.db_pool_idle_s,
        )
        app[POOL] = pool
        add_readiness_check(app, "postgres", lambda: db.ping(pool))
        yield
        await db.close_pool(pool)

    return ctx


class Resource(Protocol):
    """What an app holds open for its lifetime: pinged by ``/readyz``, closed on cleanup."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


R = TypeVar("R", bound=Resource)


def resource_ctx(
    key: web.AppKey[R],
    check: str,
    injected: R | None,
    make: Callable[[], R | Awaitable[R]],
    *,
    critical: bool = True,
) -> CleanupCtx:
    """``app[key]``, checked by ``/readyz`` as ``check``: ``injected`` (a test's: neither started nor closed here),
    else what ``make`` returns (awaited when it is a coroutine), closed on cleanup. Not ``critical``: the process
    still serves while the check fails (``common.health``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        made = injected or make()
        resource = await made if inspect.isawaitable(made) else made
        app[key] = resource
        add_readiness_check(app, check, resource.ping, critical=critical)
        yield
        if injected is None:
            await resource.close()

    return ctx


async def _started_bus(settings: ServiceSettings) -> Bus:
    bus = create_bus(settings)
    await bus.start()
    return bus


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared outgoing HTTP client (``HTTP_CLIENT``)."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    app[HTTP_CLIENT] = session
    yield
    await session.close()


def _auth_ctx(settings: ServiceSettings, injected: JWKSVerifier | None) -> CleanupCtx:
    """The JWT verifier (``VERIFIER``); an injected verifier is not closed here."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        v = injected or JWKSVerifier(
            audience=settings.jwt_audience, issuer=settings.jwt_issuer, jwks_url=settings.jwks_url
        )
        app[VERIFIER] = v
        yield
        if injected is None:
            await v.close()

    return ctx


def _relay_ctx(settings: ServiceSettings) -> CleanupCtx:
    """The outbox relay (``RELAY``), publishing committed outbox rows on the bus (needs ``POOL`` and ``BUS``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = OutboxRelay(app[POOL], app[BUS], schema=settings.schema, service=settings.service)
        app[RELAY] = relay
        await relay.start()
        yield
        await relay.stop()

    return ctx


Command = Callable[[ServiceSettings, argparse.Namespace], Coroutine[Any, Any, int]]


def run_service(
    *,
    settings: ServiceSettings,
    create_app: Callable[..., web.Application],
    migrations_dir: Path,
    argv: Sequence[str] | None = None,
    commands: Mapping[str, tuple[Command, Callable[[argparse.ArgumentParser], None] | None]] | None = None,
) -> int:
    """``python -m <svc> api|worker|migrate|<extra>``: the one entry point of a service image."""
    parser = argparse.ArgumentParser(prog=f"python -m {settings.service}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the HTTP API")
    sub.add_parser("worker", help="consume events and run long work (serves /healthz, /readyz, /metrics)")
    sub.add_parser("migrate", help="apply pending SQL migrations and exit")
    for name, (command, configure) in (commands or {}).items():
        p = sub.add_parser(name, help=(command.__doc__ or "").strip().split("\n")[0] or None)
        if configure:
            configure(p)
    args = parser.parse_args(argv)
    configure_logging(service=settings.service, fmt=settings.log_format, level=settings.log_level)

    if args.command == "migrate":
        applied = asyncio.run(
            db.migrate(settings.database_url, schema=settings.schema, directories=[migrations_dir])
        )
        log.info("migrate.done", schema=settings.schema, applied=applied)
        return 0
    if args.command in ("api", "worker"):
        app = create_app(settings, role=args.command)
        port = (
            settings.worker_port if args.command == "worker" and settings.worker_port else settings.http_port
        )
        log.info("service.starting", role=args.command, port=port)
        web.run_app(
            app,
            host=settings.http_host,
            port=port,
            shutdown_timeout=settings.shutdown_timeout_s,
            access_log=None,
            print=None,
            handle_signals=True,
        )
        return 0
    command, _ = (commands or {})[args.command]
    return asyncio.run(command(settings, args))


class ServiceMain(Protocol):
    """``main(argv=None) -> exit code`` of a ``python -m <svc>`` module."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def migrations_beside(package_file: str) -> Path:
    """The ``migrations/`` folder of the service whose package holds ``package_file`` (``services/<svc>/migrations``)."""
    return Path(package_file).resolve().parent.parent / "migrations"


def service_entry(
    package_file: str,
    settings_type: type[ServiceSettings],
    create_app: Callable[..., web.Application],
    *,
    commands: Mapping[str, tuple[Command, Callable[[argparse.ArgumentParser], None] | None]] | None = None,
) -> ServiceMain:
    """A service's ``main(argv)``: settings read once from the environment, then :func:`run_service`."""

    def main(argv: Sequence[str] | None = None) -> int:
        return run_service(
            settings=settings_type.from_env(),
            create_app=create_app,
            migrations_dir=migrations_beside(package_file),
            argv=argv,
            commands=commands,
        )

    return main


def main_exit(code: int) -> None:
    """Exit the process with ``code`` (keeps ``__main__`` modules one line)."""
    sys.exit(code)


def app_info(app: web.Application) -> dict[str, Any]:
    """What an app runs (diagnostics)."""
    return {"service": app[SETTINGS].service, "role": app[ROLE]}


def settings_of(source: web.Request | web.Application, type_: type[S]) -> S:
    """The app's settings as the service's own type (``settings_of(request, BillingSettings)``)."""
    app = source.app if isinstance(source, web.Request) else source
    settings = app[SETTINGS]
    if not isinstance(settings, type_):
        raise TypeError(f"this app's settings are {type(settings).__name__}, not {type_.__name__}")
    return settings
