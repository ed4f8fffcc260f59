/**
 * The environment variables a run against the real providers needs (the official SDKs' names) that `env` lacks: an
 * app in development, a demo or an example runs on the fakes until none is missing, and can say which ones are.
 */
export function missingProviderEnv(env: NodeJS.ProcessEnv): string[] {
  const missing: string[] = [];
  if (!env.OPENAI_API_KEY) missing.push('OPENAI_API_KEY');
  if (!env.AZURE_OPENAI_API_KEY) missing.push('AZURE_OPENAI_API_KEY');
  if (!env.AZURE_OPENAI_ENDPOINT && !env.AZURE_OPENAI_RESOURCE) missing.push('AZURE_OPENAI_ENDPOINT (or AZURE_OPENAI_RESOURCE)');
  return missing;
}
