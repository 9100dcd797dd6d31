'use strict';
// `node --require @heapwatch/agent/register app.js`: start the agent from the
// environment (HEAPWATCH_*; see docs/configuration.md). HEAPWATCH_ENABLED=false turns it off.
// Never throws into the host.
try {
  const { enabledFromEnv } = require('./dist/config.js');
  const { enabled, warning } = enabledFromEnv(process.env);
  if (warning) process.stderr.write(`[heapwatch] warn: ${warning}\n`);
  if (enabled) require('./dist/index.js').start();
} catch (e) {
  try {
    process.stderr.write(`[heapwatch] error: register failed: ${e && e.message ? e.message : String(e)}\n`);
  } catch {
    // nothing left to do
  }
}
