import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running broker (GRIDPLAY_API, default http://127.0.0.1:8080).
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  server: {
    proxy: { "/v1": process.env["GRIDPLAY_API"] ?? "http://127.0.0.1:8080" },
  },
});
