#!/usr/bin/env node
// rc-migrate, the command: runs the command line (cli/main.ts, cli/program.ts) and exits with its code.
import { main } from './cli/main.js';

process.exit(await main(process.argv));
