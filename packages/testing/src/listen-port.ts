import type { Server } from 'node:http';

/**
 * Listens on loopback at `port` (a `PORT` variable's value; any free port when unset), failing with a sentence, not a
 * stack, when it cannot: what a demo or an example app needs to start on a machine where a port may be taken.
 */
export function listenOnPort(server: Server, port: string | undefined): Promise<void> {
  const n = port ? Number(port) : 0;
  if (!Number.isInteger(n) || n < 0 || n > 65_535) return Promise.reject(new Error(`PORT must be a port number (0-65535), not "${port}".`));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`Port ${n} is in use: set PORT to a free port, or leave it unset for any free one.`) : err),
    );
    server.listen(n, '127.0.0.1', resolve);
  });
}
