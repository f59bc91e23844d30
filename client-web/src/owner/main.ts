// Entry point of the owner's dashboard (owner.html, served by the host at /): polls GET /api/owner every POLL_MS and
// draws it; the Claim button posts /api/owner/claim. The host's printed address carries its token in the fragment
// (`#token=HEX`), sent as a bearer token with every request.

import { RequestFailure, send } from "../api.ts";
import type { ClaimOutcome } from "../generated/ClaimOutcome";
import type { OwnerView } from "../generated/OwnerView";
import { claimText, claimVisible, failureText, tokenFromHash } from "./format.ts";
import { renderOwnerView } from "./render.ts";
import { byId, showMessage } from "../dom.ts";

const POLL_MS = 2000;

const ui = {
  error: byId("error", HTMLParagraphElement),
  loading: byId("loading", HTMLParagraphElement),
  claim: byId("claim", HTMLButtonElement),
  claimResult: byId("claim-result", HTMLSpanElement),
};

const token = tokenFromHash(location.hash);

function headers(): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json" };
  if (token !== null) h["Authorization"] = `Bearer ${token}`;
  return h;
}

/** A failed request in words: the token hint on 401, else the answer's message. */
function messageOf(err: unknown): string {
  if (err instanceof RequestFailure) return failureText(err.status, err.message);
  return err instanceof Error ? err.message : String(err);
}

function showError(message: string): void {
  showMessage(ui.error, message);
}

let timer = 0;
/** The latest refresh; an older one's answer is dropped. */
let latest = 0;

/** Fetches the view and draws it, then polls again in POLL_MS; a call cuts short the wait for the next poll. */
async function refresh(): Promise<void> {
  window.clearTimeout(timer);
  const mine = ++latest;
  try {
    const view = (await (await send("/api/owner", { headers: headers() })).json()) as OwnerView;
    if (mine !== latest) return;
    renderOwnerView(view);
    ui.loading.hidden = true;
    ui.claim.hidden = !claimVisible(view.earnings);
    showError("");
  } catch (err) {
    if (mine === latest) showError(messageOf(err));
  } finally {
    if (mine === latest) timer = window.setTimeout(() => void refresh(), POLL_MS);
  }
}

async function claim(): Promise<void> {
  ui.claim.disabled = true;
  ui.claimResult.textContent = "Claiming…";
  try {
    const outcome = (await (await send("/api/owner/claim", { method: "POST", headers: headers() })).json()) as ClaimOutcome;
    ui.claimResult.textContent = claimText(outcome);
  } catch (err) {
    ui.claimResult.textContent = messageOf(err);
  } finally {
    ui.claim.disabled = false;
    void refresh();
  }
}

ui.claim.addEventListener("click", () => void claim());
void refresh();
