#!/usr/bin/env node
// The `kubiki` command: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../core/cli/main.ts');
