"""Billing's own Prometheus metrics (``reelforge_billing_*``)."""

from __future__ import annotations

from prometheus_client import Counter

HOLDS = Counter("reelforge_billing_holds_total", "Hold requests by outcome", ["outcome"])
# outcome: granted | rejected | duplicate | expired
SETTLES = Counter("reelforge_billing_settles_total", "Settle requests by outcome", ["outcome"])
# outcome: captured | released | duplicate | before_hold | after_expiry | account_mismatch | clamped
CREDITS = Counter(
    "reelforge_billing_credits_total", "Credits moved through the ledger, by entry kind", ["kind"]
)
WEBHOOKS = Counter(
    "reelforge_billing_payment_webhooks_total", "Payment notifications by outcome", ["outcome"]
)
# outcome: credited | duplicate | ignored | failed | amount_mismatch | order_already_paid | forged | stale
