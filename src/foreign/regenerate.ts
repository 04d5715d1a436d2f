import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError, errorMessage } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { DEFAULT_LIMITS, type SandboxLimits } from '../setup/limits.js';
import { runSandboxed, sandboxOnCopy, scan } from '../setup/sandbox.js';
import { makeScratchDir } from '../util/fs.js';
import { fsPath } from '../util/raw-name.js';
import type { PathFacts, Regeneration } from './content-compare.js';
import { generatedRule, type Regenerator } from './generated.js';

/**
 * Reruns the commands that made an image's generated files (generated.ts) on repro-oci's own install of the
 * image's packages, in the sandbox setup commands run in (no network, bounded; the programs are the image's
 * packages', so a stranger's), and gives what they made. Nothing is written back to the tree.
 */

/** archlinux-docker locks root's password after systemd-sysusers: `root::` → `root:!:` in etc/shadow. */
function lockedShadow(content: Buffer): Buffer {
  return Buffer.from(content.toString('latin1').replace(/^root::/m, 'root:!:'), 'latin1');
}

async function fileFacts(root: string, path: string, mode: number, owner: { uid: number; gid: number }): Promise<PathFacts> {
  // The path was found by a scan that follows no symlink, after every process of the sandbox was gone.
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let size = 0;
  const keep = path === 'etc/shadow';
  const file = await open(fsPath(root, path), constants.O_RDONLY | constants.O_NOFOLLOW);
  for await (const chunk of file.createReadStream()) {
    if (keep) chunks.push(chunk as Buffer);
    else hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  if (keep) {
    const locked = lockedShadow(Buffer.concat(chunks));
    hash.update(locked);
    size = locked.length;
  }
  return { type: 'file', mode, ...owner, size, sha256: hash.digest('hex') };
}

/**
 * Runs `regenerators` in one copy of the tree, in order, and returns for each what it made (the files generated.ts
 * attributes to a regenerator, all of them read after the last command) or why it did not run.
 */
export async function regenerate(entries: TreeNode[], regenerators: readonly Regenerator[], sourceDateEpoch: number, limits: SandboxLimits = DEFAULT_LIMITS, log: (message: string) => void = () => {}): Promise<Map<string, Regeneration>> {
  const out = new Map<string, Regeneration>();
  const installed = new Map(entries.map((e) => [e.path, e]));
  const runnable = regenerators.filter((r) => {
    const program = installed.get(r.program);
    if (program?.type === 'file' || program?.type === 'symlink' || program?.type === 'hardlink') return true;
    out.set(r.id, { ok: false, reason: `${r.command[0]} is not installed by the image's packages` });
    return false;
  });
  if (runnable.length === 0) return out;
  log(`regenerating ${runnable.map((r) => r.command[0]).join(', ')} in the sandbox`);
  const scratch = await makeScratchDir('regenerate');
  try {
    const root = join(scratch.path, `root-${randomBytes(16).toString('hex')}`);
    const { sandbox } = await sandboxOnCopy(entries, root, limits);
    const ran: Regenerator[] = [];
    for (const r of runnable) {
      let failure: string | undefined;
      try {
        failure = await runSandboxed(sandbox, r.command, sourceDateEpoch, { returnFailure: true, what: `${r.command.join(' ')}` });
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        failure = errorMessage(err);
      }
      if (failure) out.set(r.id, { ok: false, reason: failure });
      else ran.push(r);
    }
    const files = new Map<string, PathFacts>();
    const ids = new Set(ran.map((r) => r.id));
    for (const [path, snap] of scan(root)) {
      const rule = generatedRule(path);
      if (rule?.check.kind !== 'regenerate' || !ids.has(rule.check.regenerator)) continue;
      // Owners as the tree had them (new paths root's): the sandbox's own uid is no part of the result.
      const node = installed.get(path);
      const owner = { uid: node?.uid ?? 0, gid: node?.gid ?? 0 };
      if (snap.type === 'file') files.set(path, await fileFacts(root, path, snap.mode, owner));
      else if (snap.type === 'symlink') files.set(path, { type: 'symlink', mode: 0o777, ...owner, size: 0, linkTarget: snap.link! });
      else if (snap.type === 'dir') files.set(path, { type: 'dir', mode: snap.mode, ...owner, size: 0 });
    }
    for (const r of ran) out.set(r.id, { ok: true, files });
    return out;
  } finally {
    await scratch.cleanup();
  }
}
