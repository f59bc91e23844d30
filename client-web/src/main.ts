// Entry point: wires the lobby, the player view and the session together.

import { listApps } from "./api.ts";
import type { App } from "./generated/App";
import { renderLobby, setPlayEnabled } from "./lobby.ts";
import { startOverlay } from "./overlay.ts";
import { createReceiptPanel, watchReceipt } from "./receipt.ts";
import { startSession, type PlaySession } from "./session.ts";
import { pageStore, wireSound } from "./sound.ts";
import { stats } from "./stats.ts";

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`missing #${id}`);
  return found;
}

const ui = {
  lobby: element("lobby", HTMLElement),
  apps: element("apps", HTMLUListElement),
  lobbyStatus: element("lobby-status", HTMLParagraphElement),
  error: element("error", HTMLParagraphElement),
  player: element("player", HTMLElement),
  video: element("stream", HTMLVideoElement),
  status: element("status", HTMLParagraphElement),
  overlay: element("stats", HTMLElement),
  end: element("end", HTMLButtonElement),
  mute: element("mute", HTMLButtonElement),
  volume: element("volume", HTMLInputElement),
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

function showError(message: string): void {
  ui.error.textContent = message;
  ui.error.hidden = message === "";
}

function showLobby(): void {
  stopOverlay();
  ui.player.hidden = true;
  ui.lobby.hidden = false;
  setPlayEnabled(ui.apps, true);
}

function showPlayer(app: App): void {
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
    session = await startSession(app, ui.video, clickedAt, {
      status: setStatus,
      failed: (err) => void endSession(err.message),
      voucher: setVoucherText,
    });
  } catch (err) {
    showLobby();
    showError(`Could not start ${app.title}: ${err instanceof Error ? err.message : String(err)}`);
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

async function loadLobby(): Promise<void> {
  try {
    const apps = await listApps();
    renderLobby(ui.apps, apps, (app, clickedAt) => void play(app, clickedAt));
    ui.lobbyStatus.textContent = apps.length === 0 ? "No games are available right now." : "";
  } catch (err) {
    ui.lobbyStatus.textContent = "";
    showError(`Could not load the games: ${err instanceof Error ? err.message : String(err)}`);
  }
}

ui.end.addEventListener("click", () => void endSession());
window.addEventListener("pagehide", () => session?.endOnPageHide());
showLobby();
void loadLobby();
