// The session's receipt, shown in the lobby after a billed session ends (its voucher was accepted).
//
// Polls GET /v1/sessions/{id}/receipt every POLL_MS until every billed block is committed on chain and the verifiable
// chain receipt is there, or for at most 2 × epoch_seconds + 10 s (two epoch commits and some slack). Shows each
// block (covered and met seconds, amount, commit), the total, and a download of the chain receipt with the command
// that checks it against the chain alone. The formatting is pure (unit-tested).

import { getReceipt } from "./api.ts";
import type { ReceiptLine } from "./generated/ReceiptLine";
import type { SessionReceipt } from "./generated/SessionReceipt";
import { shortHex, type Settled } from "./settlement.ts";

export const POLL_MS = 2000;

/** How long after the session's end the receipt is polled. */
export const pollWindowMs = (epochSeconds: number): number => (2 * epochSeconds + 10) * 1000;

const WEI_PER_MICRO_ETH = 10n ** 12n;

/** Wei (decimal) as ETH with 6 decimals, rounded half up: "0.000123 ETH". */
export function formatEth(wei: string): string {
  if (!/^\d+$/.test(wei)) return `${wei} wei`;
  const micro = (BigInt(wei) + WEI_PER_MICRO_ETH / 2n) / WEI_PER_MICRO_ETH;
  return `${micro / 1_000_000n}.${(micro % 1_000_000n).toString().padStart(6, "0")} ETH`;
}

export const isCommitted = (line: ReceiptLine): boolean => line.epoch_id !== undefined && line.commit_tx !== undefined;

/** A block as the receipt lists it. */
export function lineText(line: ReceiptLine): string {
  const commit =
    line.epoch_id !== undefined && line.commit_tx !== undefined
      ? `committed in epoch ${line.epoch_id}, tx ${shortHex(line.commit_tx, 2, 2)}`
      : "awaiting commit";
  return `Block #${line.block_index}: ${line.seconds_covered} s covered, ${line.seconds_met} s met · ${formatEth(line.amount)} · ${commit}`;
}

/** Every billed block is committed and the chain receipt is there: nothing more to wait for. */
export const receiptSettled = (r: SessionReceipt): boolean => r.receipt != null && r.lines.length > 0 && r.lines.every(isCommitted);

export const receiptFileName = (sessionId: string): string => `receipt-${sessionId.replace(/[^\w.-]/g, "_")}.json`;

/** The command that checks a downloaded receipt against the chain. */
export function verifyCommand(sessionId: string, rpcUrl: string | undefined): string {
  return `gridplay verify-receipt ${receiptFileName(sessionId)} --rpc-url ${rpcUrl ?? "<RPC URL>"}`;
}

/** An empty, hidden receipt panel placed under the lobby's heading. */
export function createReceiptPanel(lobby: HTMLElement): HTMLElement {
  const panel = document.createElement("section");
  panel.id = "receipt";
  panel.setAttribute("aria-label", "Receipt");
  panel.hidden = true;
  const heading = lobby.querySelector("h1");
  if (heading === null) lobby.prepend(panel);
  else heading.after(panel);
  return panel;
}

/** Shows the receipt of `sessionId` in `panel`, polling as above; `seen` hears each receipt. Returns a stop function. */
export function watchReceipt(panel: HTMLElement, sessionId: string, settled: Settled, seen: (r: SessionReceipt) => void): () => void {
  const windowMs = pollWindowMs(settled.info.epoch_seconds);
  const deadline = performance.now() + windowMs;
  let timer = 0;
  let stopped = false;
  let last: SessionReceipt | null = null;
  const download = new Download();

  const poll = async (): Promise<void> => {
    let note = "";
    try {
      last = (await getReceipt(sessionId)) ?? last;
    } catch (err) {
      note = `Could not fetch the receipt: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (stopped) return;
    if (last !== null) seen(last);
    const done = last !== null && receiptSettled(last);
    const outOfTime = !done && performance.now() >= deadline;
    if (done) note = "";
    else if (outOfTime) note = `Not every block was committed within ${windowMs / 1000} s.`;
    else if (note === "") note = `Waiting for the next epoch commit (every ${settled.info.epoch_seconds} s)…`;
    render(panel, sessionId, settled, last, note, download);
    if (!done && !outOfTime) timer = window.setTimeout(() => void poll(), POLL_MS);
  };

  render(panel, sessionId, settled, null, "Fetching the receipt…", download);
  panel.hidden = false;
  void poll();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    download.revoke();
    panel.hidden = true;
    panel.replaceChildren();
  };
}

/** A Blob URL of the chain receipt's JSON, made again only when the JSON changes. */
class Download {
  private url: string | null = null;
  private json = "";

  urlOf(receipt: unknown): string {
    const json = JSON.stringify(receipt, null, 2);
    if (this.url === null || json !== this.json) {
      this.revoke();
      this.json = json;
      this.url = URL.createObjectURL(new Blob([json], { type: "application/json" }));
    }
    return this.url;
  }

  revoke(): void {
    if (this.url !== null) URL.revokeObjectURL(this.url);
    this.url = null;
  }
}

function render(panel: HTMLElement, sessionId: string, settled: Settled, r: SessionReceipt | null, note: string, download: Download): void {
  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text = ""): HTMLElementTagNameMap[K] => {
    const e = document.createElement(tag);
    e.textContent = text;
    return e;
  };
  const parts: HTMLElement[] = [el("h2", "Receipt"), el("p", `Session ${sessionId} · ${settled.kind} ${shortHex(settled.player)}`)];
  if (note !== "") {
    const status = el("p", note);
    status.setAttribute("role", "status");
    parts.push(status);
  }
  if (r !== null) {
    const lines = el("ol");
    for (const line of r.lines) {
      const item = el("li", lineText(line));
      item.dataset["block"] = String(line.block_index);
      item.dataset["committed"] = String(isCommitted(line));
      lines.append(item);
    }
    const total = el("p", `Total: ${formatEth(r.total)}`);
    total.dataset["total"] = r.total;
    parts.push(lines, total);
    if (r.receipt != null) {
      const link = el("a", "Download receipt");
      link.href = download.urlOf(r.receipt);
      link.download = receiptFileName(sessionId);
      const hint = el("p");
      hint.className = "hint";
      hint.append(el("code", verifyCommand(sessionId, settled.info.rpc_url)));
      parts.push(link, hint);
    }
  }
  panel.replaceChildren(...parts);
}
