import type { ChildProcess } from 'node:child_process';

export declare const ROOT: string;
export declare const CLI: string;

export interface CollectorProcess {
  pid: number | undefined;
  grpcAddress: string;
  grpcPort: number;
  httpPort: number;
  httpUrl: string;
  dataDir: string;
  process: ChildProcess;
  output(): string;
  /** SIGTERM (the collector flushes), SIGKILL if it has not exited in 30 s. */
  stop(): Promise<void>;
}

export declare function startCollectorProcess(opts: {
  dataDir: string;
  grpcPort?: number;
  httpPort?: number;
  args?: string[];
  env?: Record<string, string>;
  nodeArgs?: string[];
  cli?: string;
  /** How long to wait for the ports (default 60 s); a collector still silent then is killed before the promise rejects. */
  startTimeoutMs?: number;
}): Promise<CollectorProcess>;
