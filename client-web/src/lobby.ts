// The lobby: one card per app with a Play button.

import type { App } from "./generated/App";

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
