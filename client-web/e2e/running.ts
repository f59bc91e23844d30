// The server and browser a file of browser tests plays against: `gridplay up` (see server.ts) and headless Chromium
// (see browser.ts), started before the file's tests and stopped after them.

import { after, before } from "node:test";

import { launchBrowser, type Browser, type BrowserOptions } from "./browser.ts";
import { startServer, type Server, type ServerOptions } from "./server.ts";

/** Starts a server and a browser before this file's tests, hands both to `started`, and stops both after the tests. */
export function serverAndBrowser(
  serverOptions: ServerOptions,
  browserOptions: BrowserOptions,
  started: (server: Server, browser: Browser) => void,
): void {
  let server: Server | undefined;
  let browser: Browser | undefined;
  before(async () => {
    server = await startServer(serverOptions);
    browser = await launchBrowser(browserOptions);
    started(server, browser);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
}
