import { defineConfig } from "vite";

// Preact through esbuild's JSX (tsconfig: jsxImportSource), so no framework plugin is needed.
// `npm run dev` proxies the API to a gateway on :8080 (`make up`).
const gateway = { target: "http://127.0.0.1:8080", changeOrigin: false };

export default defineConfig({
  // two pages: the app (index.html) and the embeddable player (embed.html, served at /embed/<id> by the gateway)
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: { input: { main: "index.html", embed: "embed.html" } },
  },
  server: { proxy: { "/api/v1/ws": { ...gateway, ws: true }, "/api": gateway, "/play": gateway } },
});
