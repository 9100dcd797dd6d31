/** Log levels, most severe first. `silent` turns the agent's own output off. */
export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  level: LogLevel;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/**
 * Writes to stderr with a `[heapwatch]` prefix. The agent runs inside someone
 * else's process: a failing stderr write must never throw into the host.
 */
export function createLogger(level: LogLevel, write: (line: string) => void = defaultWrite): Logger {
  const logger: Logger = {
    level,
    error: (m) => emit('error', m),
    warn: (m) => emit('warn', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
  };
  function emit(at: Exclude<LogLevel, 'silent'>, msg: string): void {
    if (LOG_LEVELS.indexOf(at) > LOG_LEVELS.indexOf(logger.level)) return;
    try {
      write(`[heapwatch] ${at}: ${msg}\n`);
    } catch {
      // stderr closed or broken: losing a log line is acceptable.
    }
  }
  return logger;
}

function defaultWrite(line: string): void {
  process.stderr.write(line);
}
