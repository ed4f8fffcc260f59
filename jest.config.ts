import type { Config } from 'jest';

// Tests import packages by name from their sources (no build needed); ts-jest transpiles only, `tsc -b` type-checks.
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper: { '^@switchyard/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts' },
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/packages/e2e/tsconfig.json' }] },
  testTimeout: 20_000,
};

export { config as default };
