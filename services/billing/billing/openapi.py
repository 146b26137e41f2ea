"""The OpenAPI 3.1 document of billing's public paths (aggregated by the gateway)."""

from __future__ import annotations

from typing import Any

from common import openapi
from common.openapi import json_body, json_content, problem_response

_AUTH_ERRORS = {"401": problem_response("missing, invalid or expired access token (auth.*)")}

_SCHEMAS: dict[str, Any] = {
    "Balance": {
        "type": "object",
        "required": ["account_id", "balance", "held", "available"],
        "properties": {
            "account_id": {"type": "string", "format": "uuid"},
            "balance": {"type": "integer", "minimum": 0, "description": "sum of the ledger"},
            "held": {"type": "integer", "minimum": 0, "description": "reserved by open holds"},
            "available": {"type": "integer", "minimum": 0, "description": "balance - held"},
        },
    },
    "LedgerEntry": {
        "type": "object",
        "required": ["id", "kind", "amount", "balance_after", "reference", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["grant", "topup", "capture", "refund", "adjustment"]},
            "amount": {"type": "integer", "description": "signed: captures are negative"},
            "balance_after": {"type": "integer", "minimum": 0},
            "reference": {
                "type": "string",
                "description": "hold_ref, order id, 'signup' or an adjustment key",
            },
            "memo": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "LedgerPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerEntry"}},
            "next_cursor": {"type": ["string", "null"], "description": "pass as ?cursor= for older entries"},
        },
    },
    "PriceList": {
        "type": "object",
        "required": ["unit", "prices", "per", "credit_price"],
        "properties": {
            "unit": {"const": "credit"},
            "prices": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "description": "credits per unit, e.g. captions_per_minute (per started minute)",
            },
            "per": {"type": "object", "additionalProperties": {"type": "string"}},
            "credit_price": {
                "type": "object",
                "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
            },
            "signup_grant": {"type": "integer"},
            "topup": {
                "type": "object",
                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
            },
        },
    },
    "TopupRequest": {
        "type": "object",
        "required": ["amount"],
        "additionalProperties": False,
        "properties": {"amount": {"type": "integer", "description": "credits to buy"}},
    },
    "Order": {
        "type": "object",
        "required": ["order_id", "amount", "price", "status", "created_at"],
        "properties": {
            "order_id": {"type": "string", "description": "the orderId to hand to the payment provider"},
            "amount": {"type": "integer", "description": "credits"},
            "price": {
                "type": "object",
                "required": ["amount", "currency"],
                "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
            },
            "status": {"type": "string", "enum": ["pending", "paid", "failed"]},
            "created_at": {"type": "string", "format": "date-time"},
            "paid_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "PaymentNotification": {
        "type": "object",
        "required": ["orderId", "paymentKey", "amount", "status"],
        "properties": {
            "orderId": {"type": "string"},
            "paymentKey": {"type": "string"},
            "amount": {"type": "integer", "description": "money, in the currency's smallest unit"},
            "status": {"type": "string", "description": "DONE credits; ABORTED/EXPIRED fail the order"},
        },
    },
    "PaymentResult": {
        "type": "object",
        "required": ["order_id", "order_status", "outcome", "duplicate"],
        "properties": {
            "order_id": {"type": "string"},
            "order_status": {"type": "string"},
            "outcome": {"type": "string", "enum": ["credited", "ignored", "failed"]},
            "duplicate": {"type": "boolean"},
        },
    },
}


_PATHS: dict[str, Any] = {
    "/api/v1/billing/balance": {
        "get": {
            "operationId": "billing_balance",
            "summary": "The caller's balance, held and available credits",
            "responses": {"200": json_content("Balance", "the balance"), **_AUTH_ERRORS},
        }
    },
    "/api/v1/billing/ledger": {
        "get": {
            "operationId": "billing_ledger",
            "summary": "The caller's immutable ledger entries, newest first",
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": json_content("LedgerPage", "a page of entries"),
                "422": problem_response("bad limit or cursor (validation.invalid)"),
                **_AUTH_ERRORS,
            },
        }
    },
    "/api/v1/billing/prices": {
        "get": {
            "operationId": "billing_prices",
            "summary": "The price list in credits (public)",
            "security": [],
            "responses": {"200": json_content("PriceList", "the prices")},
        }
    },
    "/api/v1/billing/topups": {
        "post": {
            "operationId": "billing_create_topup",
            "summary": "Create a pending top-up order for the payment provider",
            "requestBody": json_body("TopupRequest"),
            "responses": {
                "201": json_content("Order", "the pending order"),
                "422": problem_response("amount out of range (billing.invalid_amount, validation.invalid)"),
                **_AUTH_ERRORS,
            },
        }
    },
    "/api/v1/billing/topups/{order_id}": {
        "get": {
            "operationId": "billing_get_topup",
            "summary": "One of the caller's top-up orders",
            "parameters": [
                {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": json_content("Order", "the order"),
                "404": problem_response("no such order (not_found)"),
                **_AUTH_ERRORS,
            },
        }
    },
    "/api/v1/billing/payments/webhook": {
        "post": {
            "operationId": "billing_payment_webhook",
            "summary": "The payment provider's confirmation (HMAC-signed, no user token)",
            "description": (
                "Headers X-Payment-Timestamp (unix seconds) and X-Payment-Signature: "
                "v1=hex(HMAC-SHA256(secret, timestamp + '.' + raw body)). Idempotent by paymentKey."
            ),
            "security": [{"paymentSignature": []}],
            "requestBody": json_body("PaymentNotification"),
            "responses": {
                "200": json_content("PaymentResult", "applied (or a repeat of an applied notification)"),
                "401": problem_response("payment.signature_missing / _invalid / _expired"),
                "404": problem_response("payment.unknown_order"),
                "409": problem_response("payment.order_already_paid, payment.key_conflict"),
                "422": problem_response("payment.amount_mismatch, validation.invalid"),
                "503": problem_response("payment.webhook_not_configured"),
            },
        }
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return openapi.document(
        title="Reelforge billing",
        version="1.0.0",
        description="Credit balance, ledger, prices and top-ups.",
        paths=_PATHS,
        schemas=_SCHEMAS,
        security_schemes={
            "paymentSignature": {"type": "apiKey", "in": "header", "name": "X-Payment-Signature"}
        },
    )
