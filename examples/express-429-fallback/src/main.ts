import { runDemo } from './demo';

runDemo()
  .then((result) => {
    if (result.failed > 0) process.exitCode = 1;
  })
  .catch((err: unknown) => {
    // A refused option or a busy port is a sentence for the user, not a stack.
    console.error(err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : err);
    process.exitCode = 1;
  });
