// One place that undoes everything the benchmark created (child processes,
// the bench database, temp dirs), whether the run ends normally, throws, or
// is interrupted with Ctrl-C. Tasks run in reverse registration order.
type CleanupTask = () => Promise<void> | void;

const tasks: CleanupTask[] = [];
const syncKills = new Set<() => void>();
let running: Promise<void> | undefined;

export function onCleanup(task: CleanupTask): void {
  tasks.push(task);
}

/** Last-resort synchronous kill, used by the 'exit' hook where async work can't run. */
export function onExitKill(kill: () => void): () => void {
  syncKills.add(kill);
  return () => syncKills.delete(kill);
}

/** True once cleanup started: nothing new (servers, load runs) may be spawned. */
export function shuttingDown(): boolean {
  return running !== undefined;
}

export function runCleanup(): Promise<void> {
  running ??= (async () => {
    for (const task of tasks.reverse()) {
      try {
        await task();
      } catch (error) {
        console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  })();
  return running;
}

export function installCleanupHandlers(): void {
  process.on('exit', () => {
    for (const kill of syncKills) kill();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal} received, cleaning up...`);
      void runCleanup().finally(() => process.exit(130));
    });
  }
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs a benchmark's main(), always cleaning up, then exits with its code (1 when it threw). */
export async function runBenchmark(name: string, main: () => Promise<number>): Promise<never> {
  let exitCode = 1;
  try {
    exitCode = await main();
  } catch (error) {
    console.error(`bench:${name} failed: ${errorText(error)}`);
  } finally {
    await runCleanup();
  }
  process.exit(exitCode);
}
