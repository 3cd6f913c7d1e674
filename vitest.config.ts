import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
          exclude: ['test/system/**'],
        },
      },
      {
        // The system tests run millions of guest instructions: they load the code through Node's
        // own import (tsx strips the types) instead of Vite's module runner, whose live-binding
        // accessors make the interpreter's hot paths 10-20x slower.
        extends: true,
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          execArgv: ['--import', 'tsx'],
          // No Vitest loader hooks either (no vi.mock here; Node 20 lacks module.registerHooks).
          experimental: { viteModuleRunner: false, nodeLoader: false },
        },
      },
    ],
  },
});
