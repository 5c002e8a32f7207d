import { pathToFileURL } from 'node:url';

let typescriptRegistered = false;

/**
 * Imports a plugin's code or migration. Under tsx (tests, `npm run kubiki`) `.ts` files load
 * directly; from the built bundle (`npm start`) the tsx loader is registered on the first `.ts`
 * file, so plugins stay plain TypeScript files that need no build of their own.
 */
export async function importModule<T>(file: string): Promise<T> {
  const url = pathToFileURL(file).href;
  try {
    return (await import(url)) as T;
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
    if (typescriptRegistered) return (await import(`${url}?typescript`)) as T;
    const { register } = await import('tsx/esm/api');
    register();
    typescriptRegistered = true;
    // The failed attempt stays in the module map under its URL: ask again under another one.
    return (await import(`${url}?typescript`)) as T;
  }
}
