import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { materialize } from '../install/materialize.js';
import { PathPatterns } from '../install/noextract.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { makeScratchDir } from '../util/fs.js';
import type { Spool } from '../util/spool.js';
import { displayName, fsPath, readdirNames, readlinkName } from '../util/raw-name.js';

/**
 * Runs setup commands inside the tree with bubblewrap: no network, a fixed hostname, a clean environment
 * (SOURCE_DATE_EPOCH, TZ=UTC, LANG=C). The tree is written out twice and the commands run on both copies;
 * any path whose result differs is reported as nondeterministic. What the commands changed is folded back
 * into the model: mtimes clamped to SOURCE_DATE_EPOCH, owners kept from the model (0:0 for new paths).
 */
export interface CommandResult {
  changed: string[];
  removed: string[];
}

interface Snapshot {
  type: string;
  mode: number;
  size: number;
  ctimeNs: bigint;
  link?: string;
}

/** Every path under root, by its name's raw bytes decoded losslessly (util/raw-name.ts), as the tree model holds it. */
async function scan(root: string): Promise<Map<string, Snapshot>> {
  const out = new Map<string, Snapshot>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdirNames(fsPath(root, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(fsPath(root, path), { bigint: true });
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      const snap: Snapshot = { type, mode: Number(st.mode & 0o7777n), size: Number(st.size), ctimeNs: st.ctimeNs };
      if (type === 'symlink') snap.link = await readlinkName(fsPath(root, path));
      out.set(path, snap);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  return out;
}

async function fileHash(path: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function bwrap(root: string, command: string[], sourceDateEpoch: number): Promise<void> {
  const args = [
    '--bind', root, '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    '--unshare-all',
    '--hostname', 'repro-oci',
    '--die-with-parent',
    '--clearenv',
    '--setenv', 'PATH', '/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin',
    '--setenv', 'SOURCE_DATE_EPOCH', String(sourceDateEpoch),
    '--setenv', 'TZ', 'UTC',
    '--setenv', 'LANG', 'C',
    '--setenv', 'LC_ALL', 'C',
    '--setenv', 'HOME', '/root',
    '--chdir', '/',
    '--',
    ...command,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('bwrap', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => reject(new UserError(err.code === 'ENOENT' ? 'setup commands need bubblewrap (bwrap), which is not installed' : `bwrap: ${err.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new UserError(`setup command ${JSON.stringify(command)} failed (exit ${code}): ${output.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

/** Runs the commands on one materialized copy and returns what it changed relative to `before`. */
async function runOnCopy(entries: TreeNode[], commands: string[][], sourceDateEpoch: number, dir: string): Promise<{ before: Map<string, Snapshot>; after: Map<string, Snapshot> }> {
  await materialize(entries, dir);
  const before = await scan(dir);
  for (const command of commands) await bwrap(dir, command, sourceDateEpoch);
  return { before, after: await scan(dir) };
}

function changedPaths(before: Map<string, Snapshot>, after: Map<string, Snapshot>): { changed: string[]; removed: string[] } {
  const changed: string[] = [];
  for (const [path, snap] of after) {
    const old = before.get(path);
    if (!old || old.ctimeNs !== snap.ctimeNs || old.type !== snap.type) changed.push(path);
  }
  const removed = [...before.keys()].filter((p) => !after.has(p));
  return { changed, removed };
}

export async function runSetupCommands(nodes: Map<string, TreeNode>, commands: string[][], sourceDateEpoch: number, exclude: string[], spool: Spool): Promise<CommandResult> {
  if (commands.length === 0) return { changed: [], removed: [] };
  const entries = sortWithHardlinks(new Map([...nodes].map(([k, v]) => [k, { ...v }])));
  const a = await makeScratchDir('sandbox-a');
  const b = await makeScratchDir('sandbox-b');
  try {
    const runA = await runOnCopy(entries, commands, sourceDateEpoch, join(a.path, 'root'));
    const runB = await runOnCopy(entries, commands, sourceDateEpoch, join(b.path, 'root'));
    const excluded = new PathPatterns(exclude);
    const resultA = changedPaths(runA.before, runA.after);
    const resultB = changedPaths(runB.before, runB.after);

    // The two runs must agree on every path they touched, by content, not by timestamps.
    const differing: string[] = [];
    const touched = new Set([...resultA.changed, ...resultB.changed, ...resultA.removed, ...resultB.removed]);
    for (const path of [...touched].sort()) {
      if (excluded.matches(path)) continue;
      const sa = runA.after.get(path);
      const sb = runB.after.get(path);
      if (!sa || !sb) {
        if (sa || sb) differing.push(path);
        continue;
      }
      if (sa.type !== sb.type || sa.mode !== sb.mode || sa.size !== sb.size || sa.link !== sb.link) differing.push(path);
      else if (sa.type === 'file' && (await fileHash(fsPath(join(a.path, 'root'), path))) !== (await fileHash(fsPath(join(b.path, 'root'), path)))) differing.push(path);
    }
    if (differing.length > 0) throw new UserError(`setup commands are nondeterministic: ${differing.length} path(s) differ between two runs: ${differing.slice(0, 10).map(displayName).join(', ')}${differing.length > 10 ? ', …' : ''}`);

    // Fold run A back into the model.
    for (const path of resultA.removed) nodes.delete(path);
    for (const path of resultA.changed.sort()) {
      const snap = runA.after.get(path)!;
      const old = nodes.get(path);
      const owner = { uid: old?.uid ?? 0, gid: old?.gid ?? 0 };
      const base = { path, mode: snap.mode, ...owner, mtime: sourceDateEpoch, size: 0, owner: old?.owner ?? 'setup' };
      if (snap.type === 'dir') nodes.set(path, { ...base, type: 'dir', ...(old?.type === 'dir' ? { mtime: old.mtime } : {}) });
      else if (snap.type === 'symlink') nodes.set(path, { ...base, type: 'symlink', mode: 0o777, linkTarget: snap.link! });
      else if (snap.type === 'file') {
        const { open, size } = await spool.store(createReadStream(fsPath(join(a.path, 'root'), path)));
        nodes.set(path, { ...base, type: 'file', size, open });
      } else throw new UserError(`setup commands created ${displayName(path)}, which is neither a file, a directory nor a symlink`);
    }
    return resultA;
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
}
