// One way to find a free port, for tests and benchmarks alike.
export { freePort } from '../../bench/free-port.ts';
