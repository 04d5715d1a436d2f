import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { readTar } from '../src/tar/reader.js';
import { encodeHeader, writeTar } from '../src/tar/writer.js';
import { runCli, tempDirFor } from './support/cli.js';

/**
 * Numbers a tar header can carry but nothing downstream can use: mtimes beyond what a Date holds (PAX allows any
 * decimal, GNU base-256 up to 2^95), uid/gid of 2^32 and more (GNU tar refuses such a layer: "out of uid_t range"),
 * device numbers the ustar fields cannot hold. They are refused when read, in one line naming the entry, so that no
 * layer carrying them is ever written.
 */
const BASE: TarSourceEntry = { path: 'etc/x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 0 };

/** An archive of one entry, headers encoded without the writer's own checks (hostile input must be expressible). */
function archive(entry: Partial<TarSourceEntry>): Buffer {
  const e = { ...BASE, ...entry };
  return Buffer.concat([encodeHeader({ path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000, size: 0 }), encodeHeader(e), Buffer.alloc(1024)]);
}

/** A GNU base-256 field: the top bit marks it, the value is big-endian in the rest. */
function withBase256(tar: Buffer, headerAt: number, offset: number, width: number, value: bigint): Buffer {
  const out = Buffer.from(tar);
  const field = out.subarray(headerAt + offset, headerAt + offset + width);
  field.fill(0);
  for (let i = width - 1, v = value; i >= 0; i--, v >>= 8n) field[i] = Number(v & 0xffn);
  field[0]! |= 0x80;
  // Fix the checksum: sum of the header with the checksum field as spaces.
  const header = out.subarray(headerAt, headerAt + 512);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return out;
}

async function readAll(tar: Buffer): Promise<void> {
  for await (const entry of readTar(Readable.from([tar]), { what: 'layer L' })) for await (const chunk of entry.content()) void chunk;
}

/** A build that must be refused: exit 2, one line (matching `message`), no internal error, no image. */
function assertBuildRefused(r: { code: number | null; stderr: string; stdout: string }, out: string, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.match(r.stderr, /^repro-oci: [^\n]*\n$/);
  assert.match(r.stderr, message);
  assert.equal(existsSync(out), false);
}

/** A --rootfs directory with one file. */
function rootDir(dir: string): string {
  mkdirSync(join(dir, 'root', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'root', 'etc', 'x'), 'x');
  return join(dir, 'root');
}

const CASES: [string, Buffer, RegExp][] = [
  ['a PAX mtime of 1e300', archive({ mtime: 1e300 }), /layer L: entry "etc\/x": mtime 1e\+300 is out of range/],
  ['a PAX mtime beyond a Date', archive({ mtime: 8640000000001 }), /layer L: entry "etc\/x": mtime 8640000000001 is out of range/],
  ['a PAX mtime before a Date', archive({ mtime: -8640000000001 }), /mtime -8640000000001 is out of range/],
  ['a base-256 mtime of 2^52', withBase256(archive({}), 512, 136, 12, 2n ** 52n), /entry "etc\/x": mtime 4503599627370496 is out of range/],
  ['a PAX uid of 2^32', archive({ uid: 2 ** 32 }), /layer L: entry "etc\/x": uid 4294967296 is out of range \(0 to 4294967295\)/],
  ['a PAX gid of 2^40', archive({ gid: 2 ** 40 }), /entry "etc\/x": gid 1099511627776 is out of range/],
  ['a base-256 uid of 2^32', withBase256(archive({}), 512, 108, 8, 2n ** 32n), /entry "etc\/x": uid 4294967296 is out of range/],
  ['a base-256 device major of 2^32', withBase256(archive({ type: 'char', devMajor: 1, devMinor: 1 }), 512, 329, 8, 2n ** 32n), /entry "etc\/x": device number 4294967296 is out of range/],
];

for (const [name, tar, message] of CASES) {
  test(`tar reader: ${name} is refused, one line`, async () => {
    await assert.rejects(readAll(tar), (err: Error) => {
      assert.equal(err.name, 'UserError', err.stack);
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, message);
      return true;
    });
  });
}

test('tar reader: the largest values that fit are kept', async () => {
  const entries: { uid: number; mtime: number }[] = [];
  for await (const entry of readTar(Readable.from([archive({ uid: 2 ** 32 - 1, mtime: 8640000000000 })]))) entries.push(entry);
  assert.deepEqual(entries.map((e) => [e.uid, e.mtime]), [[0, 1700000000], [4294967295, 8640000000000]]);
});

test('tar writer: uid/gid of 2^32 and mtimes beyond a Date are refused, not written', async () => {
  const write = async (entry: Partial<TarSourceEntry>) => {
    for await (const chunk of writeTar([{ ...BASE, ...entry }])) void chunk;
  };
  await assert.rejects(write({ uid: 2 ** 32 }), /uid\/gid/);
  await assert.rejects(write({ gid: 2 ** 32 }), /uid\/gid/);
  await assert.rejects(write({ mtime: 8640000000001 }), /mtime/);
  await write({ uid: 2 ** 32 - 1, mtime: -8640000000000 });
});

for (const [name, tar, message] of CASES.slice(0, 6)) {
  test(`build --rootfs: a tarball with ${name} is one line, exit 2, no image`, async (t) => {
    const dir = await tempDirFor(t, 'tar-range');
    writeFileSync(join(dir, 'root.tar'), tar);
    const r = await runCli(['build', '--rootfs', join(dir, 'root.tar'), '--source-date-epoch', '0', '-o', `oci:${join(dir, 'out')}`]);
    assertBuildRefused(r, join(dir, 'out'), new RegExp(message.source.replace(/^layer L: /, '')));
  });
}

test('build --rootfs: an owners rule or a setup file with uid 2^32 is refused by the settings schema, not written', async (t) => {
  const dir = await tempDirFor(t, 'uid-settings');
  const root = rootDir(dir);
  for (const [config, key] of [
    ['rootfs: { owners: [{ path: /etc, uid: 4294967296, gid: 0 }] }\n', '/rootfs/owners/0/uid'],
    ['setup: { files: [{ path: /etc/y, content: y, uid: 0, gid: 4294967296 }] }\n', '/setup/files/0/gid'],
  ] as const) {
    writeFileSync(join(dir, 'image.yaml'), config);
    const r = await runCli(['build', '--rootfs', root, '--config', join(dir, 'image.yaml'), '--source-date-epoch', '0', '-o', `oci:${join(dir, 'out')}`]);
    assertBuildRefused(r, join(dir, 'out'), new RegExp(`${key} must be <= 4294967295`));
  }
});

test('a SOURCE_DATE_EPOCH beyond year 9999 is refused in one line before anything is built', async (t) => {
  const dir = await tempDirFor(t, 'sde-range');
  const root = rootDir(dir);
  writeFileSync(join(dir, 'image.yaml'), 'sourceDateEpoch: 9007199254740991\n');
  const runs = [
    await runCli(['build', '--rootfs', root, '--source-date-epoch', '9007199254740991', '-o', `oci:${join(dir, 'out')}`]),
    await runCli(['build', '--rootfs', root, '-o', `oci:${join(dir, 'out')}`], { env: { SOURCE_DATE_EPOCH: '8640000000001' } }),
    await runCli(['build', '--rootfs', root, '--config', join(dir, 'image.yaml'), '-o', `oci:${join(dir, 'out')}`], { env: { SOURCE_DATE_EPOCH: undefined } }),
  ];
  for (const r of runs) assertBuildRefused(r, join(dir, 'out'), /SOURCE_DATE_EPOCH|sourceDateEpoch/);
});
