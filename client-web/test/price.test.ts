import assert from "node:assert/strict";
import { test } from "node:test";

import { limitOf, quoteOf, quoteText, surgeText, type Quote } from "../src/price.ts";

const ETH_CENT = "10000000000000000"; // 0.01 ETH in wei

/** A candidates entry priced `price_per_block` wei at `surge_milli`. */
const host = (n: number, price_per_block: unknown, surge_milli: unknown = 1000): Record<string, unknown> => ({
  host_id: `h${n}`,
  region: "eu",
  ping_url: `http://h${n}.test/ping`,
  distance_km: n,
  price_per_block,
  surge_milli,
});

/** The quote of `body`, which must be one. */
function quote(body: unknown): Quote {
  const q = quoteOf(body);
  assert.ok(q !== null, `no quote of ${JSON.stringify(body)}`);
  return q;
}

test("hosts at one price quote that price", () => {
  const q = quote([host(1, ETH_CENT), host(2, ETH_CENT)]);
  assert.deepEqual(q, { min: 10n ** 16n, max: 10n ** 16n, surgeMilli: 1000, hosts: 2 });
  assert.equal(quoteText(q), "0.010000 ETH per 15 min");
});

test("hosts at different prices quote the range", () => {
  const q = quote([host(1, "12500000000000000"), host(2, ETH_CENT), host(3, "11000000000000000")]);
  assert.equal(q.min, 10n ** 16n);
  assert.equal(q.max, 125n * 10n ** 14n);
  assert.equal(quoteText(q), "0.010000–0.012500 ETH per 15 min");
});

test("prices that differ below a micro-ETH read as one price", () => {
  assert.equal(quoteText(quote([host(1, ETH_CENT), host(2, "10000000000000001")])), "0.010000 ETH per 15 min");
});

test("demand above ×1 is shown with the largest factor, up to two decimals", () => {
  const q = quote([host(1, ETH_CENT, 1000), host(2, "12500000000000000", 1250)]);
  assert.equal(q.surgeMilli, 1250);
  assert.equal(quoteText(q), "0.010000–0.012500 ETH per 15 min · demand ×1.25");
  assert.equal(quoteText(quote([host(1, "20000000000000000", 2000)])), "0.020000 ETH per 15 min · demand ×2");
  assert.equal(quoteText(quote([host(1, "15000000000000000", 1500)])), "0.015000 ETH per 15 min · demand ×1.5");
  assert.equal(surgeText(1250), "×1.25");
  assert.equal(surgeText(2000), "×2");
  assert.equal(surgeText(1500), "×1.5");
  assert.equal(surgeText(1333), "×1.33");
});

test("demand at or below ×1 is not mentioned", () => {
  assert.equal(quoteText(quote([host(1, ETH_CENT, 1000)])), "0.010000 ETH per 15 min");
  assert.equal(quoteText(quote([host(1, "8000000000000000", 800)])), "0.008000 ETH per 15 min");
});

test("no candidates: no free host now, and no limit", () => {
  const q = quote([]);
  assert.equal(q.hosts, 0);
  assert.equal(quoteText(q), "no free host now");
  assert.equal(limitOf(q), undefined);
});

test("malformed entries are dropped", () => {
  const body = [
    host(1, "0x10"),
    host(2, "1.5"),
    host(3, 10000000000000000),
    host(4, "-1"),
    host(5, ""),
    host(6, ETH_CENT, -1),
    host(7, ETH_CENT, 1.5),
    host(8, ETH_CENT, "1250"),
    host(9, ETH_CENT, Number.NaN),
    host(10, undefined),
    null,
    "h11",
    host(12, "20000000000000000", 1100),
  ];
  const q = quote(body);
  assert.deepEqual(q, { min: 2n * 10n ** 16n, max: 2n * 10n ** 16n, surgeMilli: 1100, hosts: 1 });
  assert.equal(quoteText(quote([host(1, "abc"), {}])), "no free host now", "nothing well-formed: no host");
});

test("an answer that is not a list gives no quote", () => {
  assert.equal(quoteOf({ error: "no_capacity", message: "x" }), null);
  assert.equal(quoteOf(null), null);
  assert.equal(quoteOf("[]"), null);
});

test("the limit is the dearest price, exact beyond a number's range", () => {
  const dear = "123456789012345678901234567890";
  const q = quote([host(1, ETH_CENT), host(2, dear, 3000)]);
  assert.equal(q.max, BigInt(dear));
  assert.equal(limitOf(q), dear);
  assert.equal(limitOf(quote([host(1, "0007")])), "7", "decimal without leading zeros");
  assert.equal(limitOf(undefined), undefined, "no quote, no limit");
});
