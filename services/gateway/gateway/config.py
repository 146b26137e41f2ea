"""Settings of the gateway service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ServiceSettings

#: the services the gateway proxies to; ``upstream_<name>`` holds each one's base URL
UPSTREAMS = registry.UPSTREAMS


@dataclass(frozen=True, kw_only=True)
class GatewaySettings(ServiceSettings):
    """Gateway settings; every field is an environment variable of the same name upper-cased."""

    service: str = "gateway"
    http_port: int = registry.get("gateway").api_port

    #: the built web app (``npm run build`` in web/); empty: the checkout's web/dist. Without its index.html ``/``
    #: answers 503 with a page saying how to build it, and a ``web.app_missing`` warning is logged (docs/web.md)
    web_dir: str = ""

    # signing keys: a directory of Ed25519 PEM files, file name = kid (a Kubernetes Secret in production)
    gateway_keys_dir: str = "./var/keys"
    keys_reload_interval_s: float = 30.0

    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 30 * 86400
    #: how long a "not revoked" answer is trusted by one replica (revocations reach every replica within it)
    revocation_cache_ttl_s: float = 5.0

    # personal API keys (docs/gateway.md "API keys")
    api_keys_per_user: int = 25
    #: lifetime of the access token minted for a key's request to an upstream (re-signed at half-life)
    api_key_token_ttl_s: int = 300
    #: ``last_used_at`` is written at most this often per key
    api_key_touch_interval_s: float = 60.0

    # Argon2id cost: 64 MiB, 3 passes (RFC 9106's memory-constrained profile), one lane per hash
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 1

    # rate limiting: requests per window by route class; limiter = auto (redis when REDIS_URL) | memory | redis
    rate_limiter: str = "auto"
    rate_limit_window_s: int = 60
    rate_limit_default: int = 100
    #: every register/login request per address, successes included (an office behind one NAT signs in at 9:00)
    rate_limit_auth: int = 60
    rate_limit_refresh: int = 60
    rate_limit_play: int = 1200
    #: requests per window per API key (each key has its own budget; api_keys_per_user caps the keys)
    rate_limit_api_key: int = 100
    rate_limit_key_prefix: str = "reelforge:rl"
    # failed sign-ins (OWASP authentication cheat sheet): counted per account (whatever the address, so spreading
    # guesses over many addresses does not help) and per address (whatever the account: password spraying)
    login_failures_per_account: int = 10
    login_failures_per_address: int = 30
    login_failure_window_s: int = 900
    #: how many reverse proxies in front of the gateway append to X-Forwarded-For (0: trust none of it)
    trusted_proxy_hops: int = 0

    # upstreams (Kubernetes service names in production); one field per registry.UPSTREAMS entry
    upstream_ingest: str = registry.get("ingest").local_url
    upstream_streaming: str = registry.get("streaming").local_url
    upstream_captions: str = registry.get("captions").local_url
    upstream_analysis: str = registry.get("analysis").local_url
    upstream_render: str = registry.get("render").local_url
    upstream_billing: str = registry.get("billing").local_url
    upstream_connect_timeout_s: float = 5.0
    #: longest silence while waiting for upstream headers or body bytes (not a cap on the whole transfer)
    upstream_read_timeout_s: float = 60.0
    upstream_max_connections: int = 512
    openapi_fetch_timeout_s: float = 2.0
    openapi_cache_ttl_s: float = 30.0

    ws_send_timeout_s: float = 5.0
    ws_heartbeat_s: float = 30.0
    #: how often open sockets are checked against revocations (a logout closes them within this)
    ws_revocation_check_s: float = 15.0

    def upstream_url(self, name: str) -> str:
        """The base URL of upstream ``name``."""
        url: str = getattr(self, f"upstream_{name}")
        return url.rstrip("/")

    @property
    def upstreams(self) -> dict[str, str]:
        """Every upstream's base URL by service name."""
        return {name: self.upstream_url(name) for name in UPSTREAMS}
