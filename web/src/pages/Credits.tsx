import { useEffect, useState } from "preact/hooks";
import { api, call, type S } from "../api/client";
import { onCredited } from "../live";
import { Action, Form, LoadMore, str, useLoad, usePaged, useReloadOn, View, when } from "../ui";

/** The kinds of paid jobs (a batch's chunks hold and capture credits; the batch job ends after them). */
const PAID = ["captions", "analysis", "analysis_chunk", "analysis_batch", "render", "transcript"];

const ledgerPage = (query: { limit: number }, cursor?: string) => call(() => api.GET("/api/v1/billing/ledger", { params: { query: { ...query, cursor } } }));

export function Credits() {
  const balance = useLoad(() => call(() => api.GET("/api/v1/billing/balance")), []);
  const ledger = usePaged({ limit: 50 }, ledgerPage);
  const prices = useLoad(() => call(() => api.GET("/api/v1/billing/prices")), []);
  const [order, setOrder] = useState<S["OrderView"]>();
  // a paid job's hold and capture move the balance: reload when any job ends
  useReloadOn(balance, PAID);
  useReloadOn(ledger, PAID);
  // a payment credited anywhere (this page's test payment, the provider's webhook, another tab): show it at once
  useEffect(
    () =>
      onCredited((c) => {
        balance.reload();
        ledger.reload();
        setOrder((o) => (o && o.order_id === c.order_id ? { ...o, status: "paid" } : o));
      }),
    [balance.reload, ledger.reload],
  );
  const topup = async (d: FormData) => setOrder(await call(() => api.POST("/api/v1/billing/topups", { body: { amount: Number(str(d, "amount")) } })));
  // development only (BILLING_TEST_PAYMENTS): billing sends its own payment webhook a signed notification
  const testPay = async (o: S["OrderView"]) => {
    await call(() => api.POST("/api/v1/billing/topups/{order_id}/test-pay", { params: { path: { order_id: o.order_id } } }));
    setOrder(await call(() => api.GET("/api/v1/billing/topups/{order_id}", { params: { path: { order_id: o.order_id } } })));
    balance.reload();
    ledger.reload();
  };
  return (
    <section class="columns">
      <div>
        <h1>Credits</h1>
        <View of={balance}>
          {(b) => (
            <dl class="figures">
              <div><dt>Available</dt><dd data-testid="available">{b.available}</dd></div>
              <div><dt>Balance</dt><dd>{b.balance}</dd></div>
              <div><dt>Held by running jobs</dt><dd>{b.held}</dd></div>
            </dl>
          )}
        </View>
        <View of={prices}>
          {(p) => (
            <>
              <h2>Top up</h2>
              <Form submit={topup} label="Create order" class="row">
                <input name="amount" type="number" min={p.topup.min} max={p.topup.max} value={p.topup.min} required /> credits
              </Form>
              {order && (
                <div class="stack" data-testid="order" data-status={order.status}>
                  <p role="status">Order <code>{order.order_id}</code>: {order.amount} credits for {order.price.amount} {order.price.currency}, <span class={`badge ${order.status}`}>{order.status}</span>.</p>
                  {order.status === "pending" && (p.topup.test_payments ? (
                    <p class="row">
                      <Action run={() => testPay(order)}>Pay (test)</Action>
                      <small class="muted">Development: this button plays the payment provider, whose webhook confirms an order.</small>
                    </p>
                  ) : (
                    <p class="muted">Pay it at the payment provider with this order id; its webhook confirms the payment and the credits appear here.</p>
                  ))}
                </div>
              )}
              <h2>Prices</h2>
              <table>
                <tbody>
                  {Object.entries(p.prices).map(([k, v]) => <tr><td>{k.replace(/_/g, " ")}</td><td>{v} credits</td><td class="muted">{p.per[k] ?? ""}</td></tr>)}
                </tbody>
              </table>
              <p class="muted">One credit costs {p.credit_price.amount} {p.credit_price.currency}; new accounts get {p.signup_grant}.</p>
            </>
          )}
        </View>
      </div>
      <div>
        <h2>Ledger</h2>
        <View of={ledger} empty={(l) => l.items.length === 0} emptyText="No entries yet.">
          {(l) => (
            <>
              <table>
                <thead><tr><th>When</th><th>What</th><th>Amount</th><th>After</th></tr></thead>
                <tbody>{l.items.map((e) => <tr><td><small>{when(e.created_at)}</small></td><td>{e.kind} <small class="muted">{e.memo}</small></td><td class={e.amount < 0 ? "neg" : "pos"}>{e.amount}</td><td>{e.balance_after}</td></tr>)}</tbody>
              </table>
              <LoadMore of={ledger} />
            </>
          )}
        </View>
      </div>
    </section>
  );
}
