import { launchBrowser } from "./browser.ts";
import { startServer } from "./server.ts";
const server = await startServer();
const browser = await launchBrowser();
try {
  const tab = await browser.context.newPage();
  await tab.goto(server.url);
  await tab.locator(`[data-app-id="orbit"]`).getByRole("button", { name: "Play" }).click();
  await tab.waitForFunction(() => window.__gridplay.framesDecoded >= 30, undefined, { timeout: 30000, polling: 50 });
  const id = await tab.evaluate(() => window.__gridplay.sessionId);
  const cdp = await browser.context.newCDPSession(tab);
  const t0 = Date.now();
  cdp.send("Page.crash").catch((e) => console.error("crash send:", String(e).slice(0, 80)));
  for (;;) {
    const r = await (await fetch(`${server.url}v1/sessions/${id}`)).json() as { state: string };
    if (r.state === "ended") break;
    if (Date.now() - t0 > 40000) { console.error("TIMEOUT", r); break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  console.error(`crash_to_ended_ms=${Date.now() - t0}`);
} finally { await browser.close(); await server.stop(); }
