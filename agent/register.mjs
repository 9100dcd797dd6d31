// `node --import @heapwatch/agent/register app.mjs`: the ESM entry loads the
// SAME CommonJS module instance as require('@heapwatch/agent'), so a script
// that also require()s or imports the agent still has one agent per isolate.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
require('./register.js');
