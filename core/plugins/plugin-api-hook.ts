// A Node module-resolution hook registered by the built bundle (`npm start`). Plugins import
// `kubiki/plugin`; without this hook that name resolves to core/plugin-api.ts, which tsx would load
// as a second copy of the core beside the bundle — two KubikiError classes, two SYSTEM principals.
// The hook points the name at the bundle's own plugin-api.js, so core and plugins share one copy.

interface HookData { pluginApiUrl: string }
type NextResolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

let pluginApiUrl: string | undefined;

export async function initialize(data: HookData): Promise<void> {
  pluginApiUrl = data.pluginApiUrl;
}

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'kubiki/plugin' && pluginApiUrl) return { url: pluginApiUrl, shortCircuit: true };
  return next(specifier, context);
}
