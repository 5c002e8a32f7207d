import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import ts from 'typescript';
import { repoRoot } from '../../core/config.ts';
import { entityTypes } from '../../core/entities/typescript-types.ts';
import { discoverPlugins } from '../../core/plugins/plugin-manifest.ts';

describe('TypeScript types from entity schemas', () => {
  it('keeps the committed plugins/base/entity-types.ts in step with the schemas (run `npm run kubiki -- types`)', async () => {
    const [base] = discoverPlugins([path.join(repoRoot, 'plugins')]).filter((p) => p.manifest.name === 'base');
    const generated = await entityTypes('base', base.entities);
    expect(fs.readFileSync(path.join(repoRoot, 'plugins/base/entity-types.ts'), 'utf8')).toBe(generated);
  });

  it('types decimals as strings and rejects unknown fields at compile time', async () => {
    const [alpha] = discoverPlugins([path.join(repoRoot, 'tests/fixtures/plugins')]).filter((p) => p.manifest.name === 'alpha');
    const source = `${await entityTypes('alpha', alpha.entities)}
const ok: WidgetInput = { code: 'W-1', name: 'x', price: '12.50', tags: ['a'] };
const read: Widget = { ...ok, id: 'x', version: 1 };
// @ts-expect-error price is a decimal string, never a float
const badPrice: WidgetInput = { code: 'W-1', name: 'x', price: 12.5 };
// @ts-expect-error unknown fields are not part of the input type
const unknown: WidgetInput = { code: 'W-1', name: 'x', colour: 'red' };
// @ts-expect-error code is required
const missing: WidgetInput = { name: 'x' };
export { ok, read, badPrice, unknown, missing };
`;
    const file = 'types-check.ts';
    const host = ts.createCompilerHost({ strict: true, noEmit: true });
    const original = host.getSourceFile;
    host.getSourceFile = (name, version) => (name === file ? ts.createSourceFile(file, source, version) : original(name, version));
    const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ['lib.es2022.d.ts'] }, host);
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });
});
