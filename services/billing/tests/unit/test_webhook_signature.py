"""The webhook signature scheme, as a provider and an attacker would exercise it."""

from __future__ import annotations

import pytest

from billing import webhook
from billing.config import BillingSettings
from common.settings import SettingsError

SECRET = "whsec_unit"
BODY = b'{"orderId":"ord_1","paymentKey":"pk","amount":1000,"status":"DONE"}'


def test_a_fresh_signature_verifies() -> None:
    headers = webhook.signed_headers(SECRET, 1_700_000_000, BODY)
    webhook.verify(SECRET, headers, BODY, now=1_700_000_010, tolerance_s=300)


def test_rotation_accepts_any_of_several_signatures() -> None:
    headers = webhook.signed_headers(SECRET, 1_700_000_000, BODY)
    old = webhook.sign("old-secret", 1_700_000_000, BODY)
    headers[webhook.SIGNATURE_HEADER] = f"{old}, {headers[webhook.SIGNATURE_HEADER]}"
    webhook.verify(SECRET, headers, BODY, now=1_700_000_000, tolerance_s=300)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b: ({**h, webhook.SIGNATURE_HEADER: "v1=" + "0" * 64}, b), "payment.signature_invalid"),
        (lambda h, b: (h, b + b" "), "payment.signature_invalid"),
        (lambda h, b: ({**h, webhook.TIMESTAMP_HEADER: "1700000001"}, b), "payment.signature_invalid"),
        (lambda h, b: ({**h, webhook.TIMESTAMP_HEADER: "soon"}, b), "payment.signature_invalid"),
        (
            lambda h, b: ({webhook.TIMESTAMP_HEADER: h[webhook.TIMESTAMP_HEADER]}, b),
            "payment.signature_missing",
        ),
    ],
)
def test_tampering_is_refused(mutate, code) -> None:
    headers, body = mutate(webhook.signed_headers(SECRET, 1_700_000_000, BODY), BODY)
    with pytest.raises(webhook.SignatureError) as err:
        webhook.verify(SECRET, headers, body, now=1_700_000_000, tolerance_s=300)
    assert err.value.code == code


@pytest.mark.parametrize("skew", [-301, 301])
def test_old_or_future_timestamps_are_refused(skew: int) -> None:
    headers = webhook.signed_headers(SECRET, 1_700_000_000, BODY)
    with pytest.raises(webhook.SignatureError) as err:
        webhook.verify(SECRET, headers, BODY, now=1_700_000_000 + skew, tolerance_s=300)
    assert err.value.code == "payment.signature_expired"


def test_prices_are_validated_when_settings_load() -> None:
    settings = BillingSettings.from_env({"PRICES": "captions_per_minute=4, render_per_output_second=2"})
    assert settings.price_list() == {"captions_per_minute": 4, "render_per_output_second": 2}
    for bad in ("captions_per_minute", "x=-1", "=3", "y=abc"):
        with pytest.raises(SettingsError):
            BillingSettings.from_env({"PRICES": bad})
