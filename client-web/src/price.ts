// The price of a 15-minute block before Play: what the broker's candidate hosts cost now, at their regions' demand.
// Pure: the lobby fetches the candidates and shows quoteText; Play sends limitOf as the most the player pays.

import { formatEth } from "./receipt.ts";

/** The prices of an app's free hosts now. */
export interface Quote {
  /** The cheapest price per block, wei. */
  min: bigint;
  /** The dearest price per block, wei. */
  max: bigint;
  /** The largest demand factor among them, thousandths (1000: ×1). */
  surgeMilli: number;
  /** How many hosts were priced; 0 when none is free. */
  hosts: number;
}

/** A candidate's price and demand factor. */
interface Priced {
  price: bigint;
  surgeMilli: number;
}

/** The quote of a `GET /v1/candidates` answer, from its well-formed entries; null when the answer is not a list. */
export function quoteOf(body: unknown): Quote | null {
  if (!Array.isArray(body)) return null;
  const priced = (body as unknown[]).map(pricedOf).filter((p): p is Priced => p !== null);
  const first = priced[0];
  if (first === undefined) return { min: 0n, max: 0n, surgeMilli: 1000, hosts: 0 };
  const prices = priced.map((p) => p.price);
  return {
    min: prices.reduce((a, b) => (b < a ? b : a), first.price),
    max: prices.reduce((a, b) => (b > a ? b : a), first.price),
    surgeMilli: Math.max(...priced.map((p) => p.surgeMilli)),
    hosts: priced.length,
  };
}

/** A candidate's price and demand factor; null when either is malformed. */
function pricedOf(entry: unknown): Priced | null {
  if (typeof entry !== "object" || entry === null) return null;
  const { price_per_block, surge_milli } = entry as Record<string, unknown>;
  if (typeof price_per_block !== "string" || !/^\d+$/.test(price_per_block)) return null;
  if (typeof surge_milli !== "number" || !Number.isSafeInteger(surge_milli) || surge_milli < 0) return null;
  return { price: BigInt(price_per_block), surgeMilli: surge_milli };
}

/** The quote as a card shows it: "0.010000–0.012500 ETH per 15 min · demand ×1.25", or "no free host now". */
export function quoteText(quote: Quote): string {
  if (quote.hosts === 0) return "no free host now";
  const low = formatEth(quote.min.toString());
  const high = formatEth(quote.max.toString());
  const price = low === high ? high : `${low.replace(/ ETH$/, "")}–${high}`;
  return quote.surgeMilli > 1000 ? `${price} per 15 min · demand ${surgeText(quote.surgeMilli)}` : `${price} per 15 min`;
}

/** A demand factor with up to two decimals, trailing zeros dropped: 1250 → "×1.25", 2000 → "×2". */
export function surgeText(surgeMilli: number): string {
  return `×${Math.round(surgeMilli / 10) / 100}`;
}

/** The most the player pays per block after seeing `quote`: its dearest price, wei, decimal; undefined without a price. */
export function limitOf(quote: Quote | undefined): string | undefined {
  return quote === undefined || quote.hosts === 0 ? undefined : quote.max.toString();
}
