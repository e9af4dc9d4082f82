import { defineConfig } from 'vitest/config';

// The build goes to dist/ui, which web/embed.go embeds into cmd/core. `npm run dev` serves the
// sources with calls forwarded to a core running on :3000 (CORE_URL to change).
const core = process.env.CORE_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist/ui',
    emptyOutDir: true,
    sourcemap: false,
    // Reproducible, small: one bundle is plenty for this UI.
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { '/k8s': core, '/auth': core },
  },
  test: {
    include: ['src/**/*.test.ts'],
  },
});
