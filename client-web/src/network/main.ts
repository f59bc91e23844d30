// Entry point of the network page (network.html, served by the broker): polls GET /v1/network every POLL_MS and
// draws it.

import { send } from "../api.ts";
import type { NetworkView } from "../generated/NetworkView";
import { renderNetworkView } from "./render.ts";
import { byId, showMessage } from "../dom.ts";

const POLL_MS = 5000;

const ui = {
  error: byId("error", HTMLParagraphElement),
  loading: byId("loading", HTMLParagraphElement),
};

function showError(message: string): void {
  showMessage(ui.error, message);
}

/** Fetches the view and draws it, then polls again in POLL_MS. */
async function refresh(): Promise<void> {
  try {
    const view = (await (await send("/v1/network", { headers: { Accept: "application/json" } })).json()) as NetworkView;
    renderNetworkView(view);
    ui.loading.hidden = true;
    showError("");
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    window.setTimeout(() => void refresh(), POLL_MS);
  }
}

void refresh();
