import { SqliteLogStore } from '@switchyard/logs';

// What better-sqlite3 throws when its install script never ran (pnpm 10+ skips dependencies' build scripts unless allowed).
jest.mock('better-sqlite3', () =>
  jest.fn(() => {
    throw new Error('Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node');
  }),
);

it('says at startup how to get better-sqlite3 built when its install script was skipped', () => {
  expect(() => new SqliteLogStore({ path: 'logs.db' })).toThrow(/^SqliteLogStore cannot open logs\.db: Could not locate the bindings file[^]*\(better-sqlite3 was not built: allow its install script, e\.g\. pnpm's `allowBuilds: \{ better-sqlite3: true \}`, then reinstall\)$/);
});
