import { register } from 'node:module';
import { pathToFileURL } from 'node:url';

let typescriptRegistered = false;

/** The bundle's folder (`dist/`): this file ends up in main.js or one of its chunks. */
const BUNDLE_DIR = new URL(import.meta.url.includes('/chunks/') ? '../' : './', import.meta.url);

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
    const tsx = await import('tsx/esm/api');
    tsx.register();
    // Registered after tsx so it runs first: `kubiki/plugin` is the bundle's copy of the core.
    register(new URL('./plugin-api-hook.js', BUNDLE_DIR), { data: { pluginApiUrl: new URL('./plugin-api.js', BUNDLE_DIR).href } });
    typescriptRegistered = true;
    // The failed attempt stays in the module map under its URL: ask again under another one.
    return (await import(`${url}?typescript`)) as T;
  }
}
