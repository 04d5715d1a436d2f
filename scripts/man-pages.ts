/**
 * Writes the man pages (src/cli/man.ts) into DIR (default man/), removing pages of commands that are gone. Run by
 * `npm run build` and `prepare`, so the installed pages always describe the installed commands.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProgram } from '../src/cli/main.js';
import { renderManPages } from '../src/cli/man.js';
import { VERSION } from '../src/version.js';

const dir = process.argv[2] ?? fileURLToPath(new URL('../../man/', import.meta.url));
const pages = renderManPages(await createProgram(), VERSION);
mkdirSync(dir, { recursive: true });
for (const name of readdirSync(dir)) if (/^repro-oci.*\.1$/.test(name) && !pages.has(name)) rmSync(join(dir, name));
for (const [name, text] of pages) writeFileSync(join(dir, name), text);
process.stdout.write(`${pages.size} man pages in ${dir}\n`);
