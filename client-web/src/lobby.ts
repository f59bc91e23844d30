// The lobby: one card per app with a Play button, and its price when the broker settles on chain.

import type { App } from "./generated/App";

/** One card per app in `list`; `onPlay` hears a Play click with its event time. */
export function renderLobby(list: HTMLElement, apps: App[], onPlay: (app: App, clickedAt: number) => void): void {
  list.replaceChildren(...apps.map((app) => card(app, onPlay)));
}

function card(app: App, onPlay: (app: App, clickedAt: number) => void): HTMLElement {
  const item = document.createElement("li");
  item.className = "card";
  item.dataset["appId"] = app.id;

  const title = document.createElement("h2");
  title.textContent = app.title;
  const description = document.createElement("p");
  description.textContent = app.description;
  const profile = document.createElement("span");
  profile.className = "profile";
  profile.textContent = app.profile;
  const play = document.createElement("button");
  play.type = "button";
  play.textContent = "Play";
  play.addEventListener("click", (e) => onPlay(app, e.timeStamp));

  item.append(title, profile, description, play);
  return item;
}

/** Enables or disables every Play button (while a session starts). */
export function setPlayEnabled(list: HTMLElement, enabled: boolean): void {
  for (const button of list.querySelectorAll("button")) button.disabled = !enabled;
}

/** Shows `text` in the card of `appId` as its price (`p.price`, made before the Play button the first time). */
export function showPrice(list: HTMLElement, appId: string, text: string): void {
  const item = cardOf(list, appId);
  if (item === null) return;
  let price = item.querySelector<HTMLParagraphElement>("p.price");
  if (price === null) {
    price = document.createElement("p");
    price.className = "price";
    item.insertBefore(price, item.querySelector("button"));
  }
  price.textContent = text;
}

function cardOf(list: HTMLElement, appId: string): HTMLElement | null {
  for (const item of list.children) {
    if (item instanceof HTMLElement && item.dataset["appId"] === appId) return item;
  }
  return null;
}
