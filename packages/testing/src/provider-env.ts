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

/** The option each variable fills where an app builds virtual keys `openai-prod` and `azure-prod` from them (the examples). */
const OPTION_OF_ENV: ReadonlyArray<readonly [string, string]> = [
  ['OPENAI_API_KEY', 'virtualKeys["openai-prod"].api_key'],
  ['AZURE_OPENAI_API_KEY', 'virtualKeys["azure-prod"].api_key'],
  ['AZURE_OPENAI_ENDPOINT', 'virtualKeys["azure-prod"].endpoint'],
  ['AZURE_OPENAI_RESOURCE', 'virtualKeys["azure-prod"].resource_name'],
  ['AZURE_OPENAI_API_VERSION', 'virtualKeys["azure-prod"].api_version'],
  ['AZURE_OPENAI_DEPLOYMENT', 'virtualKeys["azure-prod"].deployments'],
];

/**
 * Renames, in a refused option's message (`- virtualKeys["azure-prod"].endpoint: must be an http(s) URL`), each
 * option one of these variables filled after the variable (`- AZURE_OPENAI_ENDPOINT: must be an http(s) URL
 * (virtualKeys["azure-prod"].endpoint)`): someone who only exported variables reads the name they wrote. The error
 * itself is returned, its message changed.
 */
export function withProviderEnvNames<T>(err: T): T {
  if (!(err instanceof Error)) return err;
  err.message = err.message.replace(/^(\s*- )(virtualKeys\["[^"\n]+"\]\.\w+)([^:\n]*): (.*)$/gm, (line, lead: string, option: string, rest: string, text: string) => {
    const found = OPTION_OF_ENV.find(([, path]) => path === option);
    return found ? `${lead}${found[0]}: ${text} (${option}${rest})` : line;
  });
  return err;
}
