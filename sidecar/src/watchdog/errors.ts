// The watchdogs' failures live with the others in ../errors.ts.
export { CpuLimitError, MemoryLimitError } from '../errors';
