import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'core/**/*.test.ts', 'plugins/**/*.test.ts'],
    // One embedded database per worker, shared by the files it runs (each test file works in its
    // own PostgreSQL schema): PGlite takes seconds to start, so it must not start per file.
    pool: 'forks',
    isolate: false,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
