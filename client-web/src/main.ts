// Entry point: wires the lobby, the player view and the session together.

import { getCandidates, listApps, RequestFailure } from "./api.ts";
import type { App } from "./generated/App";
import { renderLobby, setPlayEnabled, showPrice } from "./lobby.ts";
import { startOverlay } from "./overlay.ts";
import { limitOf, quoteOf, quoteText, type Quote } from "./price.ts";
import { createReceiptPanel, watchReceipt } from "./receipt.ts";
import { startSession, type PlaySession } from "./session.ts";
import { fetchSettlement } from "./settlement.ts";
import { pageStore, wireSound } from "./sound.ts";
import { stats } from "./stats.ts";
import { byId, showMessage } from "./dom.ts";

/** How often the lobby's prices are fetched again while it shows. */
const QUOTE_REFRESH_MS = 30_000;
/** The error banner when the broker turned Play down because every free host got dearer than the card's price. */
const PRICES_ROSE = "Prices rose since this page showed them; the new prices are shown — press Play again.";

const ui = {
  lobby: byId("lobby", HTMLElement),
  apps: byId("apps", HTMLUListElement),
  lobbyStatus: byId("lobby-status", HTMLParagraphElement),
  error: byId("error", HTMLParagraphElement),
  player: byId("player", HTMLElement),
  video: byId("stream", HTMLVideoElement),
  status: byId("status", HTMLParagraphElement),
  overlay: byId("stats", HTMLElement),
  end: byId("end", HTMLButtonElement),
  mute: byId("mute", HTMLButtonElement),
  volume: byId("volume", HTMLInputElement),
};
/** Puts the saved sound setting on the picture's element (muted until then). */
const applySound = wireSound(ui.video, ui.mute, ui.volume, pageStore());
/** The receipt of the latest billed session, in the lobby. */
const receiptPanel = createReceiptPanel(ui.lobby);
/** The voucher's state in the player's bar ("wallet 0x…: voucher accepted"). */
const voucherBadge = document.createElement("span");
voucherBadge.id = "settlement";
voucherBadge.hidden = true;
ui.end.before(voucherBadge);

let session: PlaySession | null = null;
let stopOverlay = (): void => undefined;
let stopReceipt = (): void => undefined;
/** The apps whose cards show prices: every app when the broker settles on chain, else none. */
let pricedApps: App[] = [];
/** Each app's latest quote, by id: what its card shows, and the most Play lets a block cost. */
const quotes = new Map<string, Quote>();
let quoteTimer = 0;
/** Counts refreshes, so that answers of an older one never replace a newer quote. */
let quoteRound = 0;

function showError(message: string): void {
  showMessage(ui.error, message);
}

function showLobby(): void {
  stopOverlay();
  ui.player.hidden = true;
  ui.lobby.hidden = false;
  setPlayEnabled(ui.apps, true);
  startQuotes();
}

function showPlayer(app: App): void {
  window.clearInterval(quoteTimer); // prices refresh only while the lobby shows
  // The layout follows the profile: "phone" is a portrait picture filling the viewport.
  ui.player.dataset["profile"] = app.profile;
  applySound(); // in the Play click: a user gesture, so the browser lets the sound play
  ui.lobby.hidden = true;
  ui.player.hidden = false;
  stopOverlay = startOverlay(ui.overlay, stats);
}

function setVoucherText(text: string): void {
  voucherBadge.textContent = text;
  voucherBadge.hidden = text === "";
}

function setStatus(text: string): void {
  ui.status.textContent = text;
  ui.status.hidden = text === "";
}

async function play(app: App, clickedAt: number): Promise<void> {
  showError("");
  stopReceipt();
  stopReceipt = (): void => undefined;
  setVoucherText("");
  setPlayEnabled(ui.apps, false);
  showPlayer(app);
  try {
    session = await startSession(
      app,
      ui.video,
      clickedAt,
      {
        status: setStatus,
        failed: (err) => void endSession(err.message),
        voucher: setVoucherText,
      },
      limitOf(quotes.get(app.id)),
    );
  } catch (err) {
    showLobby(); // quotes again: after price_above_limit, the cards show the new prices
    showError(startFailure(app, err));
  }
}

/** What the error banner says when Play failed. */
function startFailure(app: App, err: unknown): string {
  if (err instanceof RequestFailure && err.code === "price_above_limit") return PRICES_ROSE;
  return `Could not start ${app.title}: ${err instanceof Error ? err.message : String(err)}`;
}

/** Quotes every priced app now, then every QUOTE_REFRESH_MS until the player view shows. */
function startQuotes(): void {
  window.clearInterval(quoteTimer);
  refreshQuotes();
  quoteTimer = window.setInterval(refreshQuotes, QUOTE_REFRESH_MS);
}

function refreshQuotes(): void {
  quoteRound += 1;
  for (const app of pricedApps) void refreshQuote(app, quoteRound);
}

/** Fetches the quote of `app` and shows it on its card; on failure the card keeps its last quote. */
async function refreshQuote(app: App, round: number): Promise<void> {
  try {
    const quote = quoteOf(await getCandidates(app));
    if (quote === null) throw new Error("the candidates answer is not a list");
    if (round !== quoteRound) return;
    quotes.set(app.id, quote);
    showPrice(ui.apps, app.id, quoteText(quote));
  } catch (err) {
    console.warn(`gridplay: no price for ${app.id}:`, err);
  }
}

async function endSession(errorMessage = ""): Promise<void> {
  const ending = session;
  session = null;
  setStatus("Ending…");
  await ending?.end();
  setStatus("");
  showLobby();
  showError(errorMessage);
  // A billed session's receipt: the voucher may still be on its way (it never waits on the stream).
  const settled = await ending?.settled;
  if (ending && settled && !ui.lobby.hidden) {
    stopReceipt = watchReceipt(receiptPanel, ending.id, settled, (r) => {
      stats.receipt = r;
    });
  }
}

/** Shows the catalogue, and its prices when the broker settles on chain. */
async function loadLobby(): Promise<void> {
  const settlement = fetchSettlement();
  try {
    const apps = await listApps();
    renderLobby(ui.apps, apps, (app, clickedAt) => void play(app, clickedAt));
    ui.lobbyStatus.textContent = apps.length === 0 ? "No games are available right now." : "";
    if ((await settlement) !== null) {
      pricedApps = apps;
      refreshQuotes();
    }
  } catch (err) {
    ui.lobbyStatus.textContent = "";
    showError(`Could not load the games: ${err instanceof Error ? err.message : String(err)}`);
  }
}

ui.end.addEventListener("click", () => void endSession());
window.addEventListener("pagehide", () => session?.endOnPageHide());
showLobby();
void loadLobby();
