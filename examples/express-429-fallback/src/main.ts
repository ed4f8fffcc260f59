import { runDemo } from './demo';

runDemo().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
