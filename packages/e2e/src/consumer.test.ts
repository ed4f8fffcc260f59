/**
 * The built packages, installed the way a user installs them, into a plain-JS app with no TypeScript tooling:
 * `require` (CommonJS, as NestJS apps are) and `import` (ESM) both run a fallback end to end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../..');
const PNPM = ['-y', 'pnpm@12.4.2'];

const script = (load: string) => `${load}
(async () => {
  const openai = await startFakeOpenAI({ defaultReply: replies.rateLimited() });
  const azure = await startFakeAzureOpenAI({ apiKey: 'az-key' });
  const app = express();
  app.use(fallbackMiddleware({
    virtualKeys: {
      oai: { provider: 'openai', api_key: 'sk-x', custom_host: openai.baseURL },
      az: { provider: 'azure-openai', api_key: 'az-key', custom_host: azure.baseURL, deployment_id: 'dep' },
    },
    config: { strategy: { mode: 'fallback', on_status_codes: [429] }, targets: [{ virtual_key: 'oai' }, { virtual_key: 'az' }] },
  }));
  const server = app.listen(0, '127.0.0.1', async () => {
    const res = await fetch('http://127.0.0.1:' + server.address().port + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = await res.json();
    console.log(JSON.stringify({ status: res.status, target: res.headers.get('x-switchyard-target'), content: body.choices[0].message.content, code: typeof SwitchyardError }));
    server.close(); await openai.close(); await azure.close();
  });
})();
`;

describe('built packages in a plain-JS consumer app', () => {
  let dir: string;

  beforeAll(() => {
    execFileSync('npx', [...PNPM, 'run', 'build'], { cwd: root, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'switchyard-consumer-'));
    for (const pkg of ['core', 'express', 'koa', 'nestjs', 'testing']) {
      execFileSync('npx', [...PNPM, 'pack', '--pack-destination', dir], { cwd: join(root, 'packages', pkg), stdio: 'pipe' });
    }
    const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
    const deps: Record<string, string> = {
      express: '^5.1.0', koa: '^3.0.0', '@nestjs/common': '^11.0.0', '@nestjs/core': '^11.0.0', 'reflect-metadata': '^0.2.0', rxjs: '^7.8.0',
    };
    for (const t of tarballs) deps[`@switchyard/${/^switchyard-([a-z]+)-/.exec(t)![1]}`] = `file:./${t}`;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: deps }));
    // From the registry (express, koa, Nest): one more try on a registry hiccup, as a CI machine meets them.
    const install = () => execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'pipe' });
    try {
      install();
    } catch {
      install();
    }
    writeFileSync(
      join(dir, 'app.cjs'),
      script(`const express = require('express');
const { fallbackMiddleware } = require('@switchyard/express');
const { SwitchyardError } = require('@switchyard/core');
const { startFakeOpenAI, startFakeAzureOpenAI, replies } = require('@switchyard/testing');`),
    );
    writeFileSync(
      join(dir, 'app.mjs'),
      script(`import express from 'express';
import { fallbackMiddleware } from '@switchyard/express';
import { SwitchyardError } from '@switchyard/core';
import { startFakeOpenAI, startFakeAzureOpenAI, replies } from '@switchyard/testing';`),
    );
  }, 180_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the Koa and NestJS adapters from CommonJS and ESM', () => {
    writeFileSync(join(dir, 'adapters.cjs'), "require('reflect-metadata'); const k = require('@switchyard/koa'); const n = require('@switchyard/nestjs'); console.log(typeof k.fallbackMiddleware, typeof n.SwitchyardModule.forRoot, typeof n.SwitchyardService)");
    writeFileSync(join(dir, 'adapters.mjs'), "import 'reflect-metadata'; import { fallbackMiddleware } from '@switchyard/koa'; import { SwitchyardModule, SwitchyardService } from '@switchyard/nestjs'; console.log(typeof fallbackMiddleware, typeof SwitchyardModule.forRoot, typeof SwitchyardService)");
    for (const file of ['adapters.cjs', 'adapters.mjs']) {
      expect(execFileSync('node', [file], { cwd: dir, encoding: 'utf8' }).trim()).toBe('function function function');
    }
  });

  it('ships the sources its source maps name (stack traces and go-to-definition land on real files), not its tests', () => {
    for (const pkg of ['core', 'express', 'koa', 'nestjs', 'testing']) {
      const dist = join(dir, 'node_modules', '@switchyard', pkg, 'dist');
      for (const map of ['index.js.map', 'index.d.ts.map']) {
        const { sources } = JSON.parse(readFileSync(join(dist, map), 'utf8')) as { sources: string[] };
        expect(sources.length).toBeGreaterThan(0);
        for (const source of sources) expect([pkg, source, existsSync(join(dist, source))]).toEqual([pkg, source, true]);
      }
    }
    expect(existsSync(join(dir, 'node_modules/@switchyard/core/src/engine/retry-delay.ts'))).toBe(true);
    expect(existsSync(join(dir, 'node_modules/@switchyard/core/src/engine/retry-delay.test.ts'))).toBe(false);
  });

  it.each(['app.cjs', 'app.mjs'])('%s falls back from OpenAI 429 to Azure, without the optional peers installed', (file) => {
    // npm installs required peers: only optional ones are left out (as --legacy-peer-deps and Yarn 1 leave out all).
    expect(existsSync(join(dir, 'node_modules/@opentelemetry/api'))).toBe(false);
    const out = execFileSync('node', [file], { cwd: dir, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ status: 200, target: 'targets[1]', content: 'Hello from azure-openai', code: 'function' });
  });
});
