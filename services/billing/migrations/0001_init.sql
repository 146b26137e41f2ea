-- billing: accounts, the immutable credit ledger, holds, top-up orders and payment receipts.
-- The common outbox, inbox and jobs tables are created first by common/sql.

-- One account per user (account id = user id). balance and held are caches of the ledger and of the
-- open holds, kept in the same transaction as every entry; the CHECKs make the database itself refuse
-- a negative balance or holds beyond the balance, whatever the code above does.
CREATE TABLE accounts (
    id         uuid PRIMARY KEY,
    email      text NOT NULL DEFAULT '',
    balance    bigint NOT NULL DEFAULT 0,
    held       bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_not_negative CHECK (balance >= 0),
    CONSTRAINT held_not_negative CHECK (held >= 0),
    CONSTRAINT held_within_balance CHECK (held <= balance)
);

-- Immutable entries: the balance is their sum. (account_id, kind, reference) is the idempotency key of
-- every posting (the signup grant, a hold's capture, an order's top-up, an adjustment's key).
CREATE TABLE ledger_entries (
    seq           bigserial PRIMARY KEY,
    id            uuid NOT NULL UNIQUE,
    account_id    uuid NOT NULL REFERENCES accounts (id),
    kind          text NOT NULL CHECK (kind IN ('grant', 'topup', 'capture', 'refund', 'adjustment')),
    amount        bigint NOT NULL CHECK (amount <> 0),
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    reference     text NOT NULL,
    memo          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_sign CHECK (
        (kind IN ('grant', 'topup', 'refund') AND amount > 0)
        OR (kind = 'capture' AND amount < 0)
        OR kind = 'adjustment'
    )
);
CREATE UNIQUE INDEX ledger_idempotency ON ledger_entries (account_id, kind, reference);
CREATE INDEX ledger_by_account ON ledger_entries (account_id, seq DESC);

CREATE FUNCTION ledger_entries_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are immutable (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_are_immutable();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_are_immutable();

-- A hold reserves credits under the requester's hold_ref (the saga's idempotency key).
-- awaiting_hold: a settle arrived before its hold request (kept, applied when the hold arrives).
CREATE TABLE holds (
    hold_ref       text PRIMARY KEY,
    account_id     uuid NOT NULL,
    amount         bigint,
    status         text NOT NULL
                   CHECK (status IN ('awaiting_hold', 'held', 'captured', 'released', 'expired', 'rejected')),
    reason         text NOT NULL DEFAULT '',
    reject_code    text,
    captured       bigint NOT NULL DEFAULT 0 CHECK (captured >= 0),
    refunded       bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    settle_capture bigint,
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    CONSTRAINT hold_amount CHECK (status = 'awaiting_hold' OR amount > 0),
    CONSTRAINT capture_within_hold CHECK (captured <= coalesce(amount, 0)),
    CONSTRAINT refund_within_capture CHECK (refunded <= captured)
);
CREATE INDEX holds_open_by_expiry ON holds (expires_at) WHERE status = 'held';
CREATE INDEX holds_by_account ON holds (account_id, status);

-- Top-up orders: created by the user, paid by the payment provider's webhook.
CREATE TABLE orders (
    order_id     text PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id),
    credits      bigint NOT NULL CHECK (credits > 0),
    price        bigint NOT NULL CHECK (price > 0),
    currency     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    payment_key  text UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    paid_at      timestamptz
);
CREATE INDEX orders_by_account ON orders (account_id, created_at DESC);

-- Every authenticated webhook delivery, by payment key (the provider's idempotency key), with what we did.
-- Keyed by (payment_key, status): a virtual-account payment reports WAITING_FOR_DEPOSIT, then DONE.
CREATE TABLE payments (
    payment_key text NOT NULL,
    order_id    text NOT NULL,
    amount      bigint NOT NULL,
    status      text NOT NULL,
    outcome     text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_key, status)
);
