import fs from 'node:fs';
import path from 'node:path';
import { KubikiError } from '../errors.ts';

const LOCK_FILE = 'kubiki.lock';

interface LockOwner { pid: number; command: string; startedAt: string }

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' ? { pid: owner.pid, command: String(owner.command ?? '?'), startedAt: String(owner.startedAt ?? '?') } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PGlite is one process's database: a second process opening the same folder corrupts it or dies
 * in WASM (`RuntimeError: Aborted()`). The folder holds a lock file naming its process; another
 * Kubiki (a CLI command while the server runs) is refused with a sentence saying who holds it.
 * A lock left by a process that no longer exists is taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, command: process.argv.slice(2).join(' ') || 'kubiki', startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (readOwner(file)?.pid === process.pid) fs.rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(file);
    if (owner && owner.pid !== process.pid && alive(owner.pid)) {
      throw new KubikiError('database-in-use',
        `the embedded database in ${dataDir} is in use by process ${owner.pid} (kubiki ${owner.command}, since ${owner.startedAt}); ` +
        'stop that process first, or run both on PostgreSQL (DATABASE_URL) to share one database — the HTTP API of the running server does the same as the CLI',
        { extra: { pid: owner.pid, lockFile: file } });
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new KubikiError('database-in-use', `could not take the lock file ${file}`);
}
