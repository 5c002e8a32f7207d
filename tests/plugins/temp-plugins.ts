import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../core/config.ts';

/**
 * A plugin folder written at test time. It lives under the repository's git-ignored tmp/ so that
 * plugin code importing 'kubiki/plugin' resolves (the package references itself).
 */
export interface TempPlugins {
  /** The folder to put in `pluginDirs`. */
  root: string;
  /** Writes files of plugin `name` (paths relative to its folder; objects are written as JSON). */
  write(name: string, files: Record<string, string | object>): string;
  /** Copies a plugin folder (e.g. a fixture) into the root, under the same name. */
  copy(from: string): string;
  /** Reads and rewrites a JSON file of a plugin. */
  editJson(name: string, file: string, edit: (json: any) => void): void;
  remove(): void;
}

export function tempPlugins(): TempPlugins {
  const base = path.join(repoRoot, 'tmp');
  fs.mkdirSync(base, { recursive: true });
  const root = fs.mkdtempSync(path.join(base, 'plugins-'));
  return {
    root,
    write(name, files) {
      const dir = path.join(root, name);
      for (const [file, content] of Object.entries(files)) {
        const full = path.join(dir, file);
        fs.mkdirSync(path.dirname(full), { recursive: true });
        fs.writeFileSync(full, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      }
      return dir;
    },
    copy(from) {
      const dir = path.join(root, path.basename(from));
      fs.cpSync(from, dir, { recursive: true });
      return dir;
    },
    editJson(name, file, edit) {
      const full = path.join(root, name, file);
      const json = JSON.parse(fs.readFileSync(full, 'utf8'));
      edit(json);
      fs.writeFileSync(full, JSON.stringify(json, null, 2));
    },
    remove() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A minimal valid manifest; `extra` overrides or adds keys. */
export const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, version: '1.0.0', core: '^0.1.0', ...extra });

/** A minimal valid entity schema with a title field `title`; `properties` adds fields. */
export const entitySchema = (plural: string, properties: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  'x-plural': plural,
  properties: { title: { type: 'string', 'x-title': true }, ...properties },
  required: ['title'],
  ...extra,
});
