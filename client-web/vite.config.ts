import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

// Three pages: the player's lobby (index.html), the broker's public network page (network.html) and the host owner's
// dashboard (owner.html, served by the host at /).
// `npm run dev` proxies the API to a running broker (GRIDPLAY_API, default http://127.0.0.1:8080).
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL("./index.html", import.meta.url)),
        network: fileURLToPath(new URL("./network.html", import.meta.url)),
        owner: fileURLToPath(new URL("./owner.html", import.meta.url)),
      },
    },
  },
  server: {
    proxy: { "/v1": process.env["GRIDPLAY_API"] ?? "http://127.0.0.1:8080" },
  },
});
