/**
 * Compiles every schema of schemas/ into validation code ahead of time (Ajv's standalone mode), written to
 * dist/src/util/schema-validators.cjs, one export per schema file name: compiling them when a command starts cost
 * it ~0.25 s (Ajv's meta-schema check and code generation). Run by `npm run build` and `prepare`, after tsc.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';

const schemaDir = new URL('../../schemas/', import.meta.url);
const output = new URL('../src/util/schema-validators.cjs', import.meta.url);

// The options the messages of src/util/yaml-schema.ts rely on: every error, with its schema and data (verbose).
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, code: { source: true } });
const exported: Record<string, string> = {};
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith('.schema.json')).sort()) {
  const schema = JSON.parse(readFileSync(new URL(file, schemaDir), 'utf8')) as { $id?: string };
  if (!schema.$id) throw new Error(`schemas/${file} has no $id`);
  ajv.addSchema(schema);
  exported[file] = schema.$id;
}
writeFileSync(output, standalone.default(ajv, exported)); // a CommonJS module: .default is the function
process.stdout.write(`${Object.keys(exported).length} schemas compiled into ${output.pathname}\n`);
