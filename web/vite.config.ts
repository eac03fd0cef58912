import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// Deterministic output: fixed asset names (no content hash is needed, the binary embeds one version),
// no source maps, no build timestamps.
export default defineConfig({
  base: '/',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    modulePreload: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/app-[hash].js',
        chunkFileNames: 'assets/chunk-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:10350',
      '/proxy': 'http://127.0.0.1:10350',
      '/ws': { target: 'ws://127.0.0.1:10350', ws: true },
    },
  },
});
