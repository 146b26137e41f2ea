"""Settings of the billing service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ServiceSettings, SettingsError

# What each paid operation costs, in credits. Overridden as a whole by PRICES="name=credits,...".
DEFAULT_PRICES: tuple[str, ...] = (
    "captions_per_minute=2",
    "translation_per_minute=1",
    "analysis_per_video=5",
    "render_per_output_second=1",
)

# The unit each price is per, for the price list (unknown names are listed as "unit").
PRICE_UNITS: dict[str, str] = {
    "captions_per_minute": "started minute of source audio",
    "translation_per_minute": "started minute of source audio, per target language",
    "analysis_per_video": "video",
    "render_per_output_second": "started second of rendered output",
}


@dataclass(frozen=True, kw_only=True)
class BillingSettings(ServiceSettings):
    """Billing settings; every field is an environment variable of the same name upper-cased."""

    service: str = "billing"
    http_port: int = registry.get("billing").api_port
    worker_port: int = registry.get("billing").worker_port or 0
    signup_grant: int = 100  # credits every new account starts with (0 disables the grant)
    prices: tuple[str, ...] = DEFAULT_PRICES
    # a hold for an account not opened yet (its user.registered still in flight) is retried by the bus on
    # its first deliveries (back-off 1 s, 5 s, 30 s by default) before it is rejected as credits.no_account
    hold_account_wait_attempts: int = 3
    hold_default_ttl_s: int = 3600  # used when a hold request carries no (or a non-positive) ttl_s
    hold_max_ttl_s: int = 24 * 3600
    hold_sweep_interval_s: float = 5.0
    hold_sweep_batch: int = 200
    credit_price: int = 10  # what one credit costs, in the payment currency's smallest unit
    payment_currency: str = "KRW"
    topup_min_credits: int = 10
    topup_max_credits: int = 1_000_000
    payment_webhook_secret: str = ""  # empty: the webhook refuses everything (503)
    payment_webhook_tolerance_s: int = 300  # how old (or early) a signed timestamp may be
    # development and tests only: POST /topups/{id}/test-pay plays the payment provider (a signed webhook to
    # billing's own handler); refused at startup in production
    billing_test_payments: bool = False

    def __post_init__(self) -> None:
        self.price_list()  # fail at startup, not on the first request
        if self.signup_grant < 0 or self.credit_price <= 0 or self.topup_min_credits <= 0:
            raise SettingsError("SIGNUP_GRANT must be >= 0, CREDIT_PRICE and TOPUP_MIN_CREDITS > 0")
        if self.topup_max_credits < self.topup_min_credits:
            raise SettingsError("TOPUP_MAX_CREDITS must be >= TOPUP_MIN_CREDITS")
        if self.billing_test_payments and self.environment == "production":
            raise SettingsError("BILLING_TEST_PAYMENTS pays orders without a provider: never in production")

    def price_list(self) -> dict[str, int]:
        """The configured prices, ``{name: credits}``."""
        out: dict[str, int] = {}
        for item in self.prices:
            name, sep, value = item.partition("=")
            name = name.strip()
            try:
                credits = int(value)
            except ValueError:
                credits = -1
            if not sep or not name or credits < 0:
                raise SettingsError(f"PRICES: expected name=credits (credits >= 0), got {item!r}")
            out[name] = credits
        return out
