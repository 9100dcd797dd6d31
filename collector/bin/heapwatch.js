#!/usr/bin/env node
// The `heapwatch` command. A committed file rather than dist/cli.js itself:
// npm links a package's bin when it installs, which in a fresh checkout is
// before `prepare` has built dist/, and it does not link a file that is
// not there yet.
'use strict';
require('../dist/cli.js').run(process.argv.slice(2));
