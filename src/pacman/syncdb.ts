import { UserError } from '../errors.js';
import { decompressAuto } from '../compress/index.js';
import { readTar } from '../tar/reader.js';
import { parseDesc, readFilesEntry, readSyncDesc, type SyncDesc } from './desc.js';
import { byteOrder } from '../util/order.js';
import { displayName } from '../util/raw-name.js';
import { readSmall } from '../util/fs.js';

/** One package of a sync database. */
export interface SyncDbPackage {
  /** The entry directory, `<name>-<version>`. */
  dir: string;
  desc: SyncDesc;
  /** From the `files` member, present in `<repo>.files` databases. */
  files?: string[];
  backup?: string[];
}

export interface SyncDb {
  /** Sorted by name (bytewise), whatever order the archive had. */
  packages: SyncDbPackage[];
  /** Unknown keys and members, which pacman also skips. */
  warnings: string[];
}

/** desc and files members are small text files; anything bigger is not a database. */
const MAX_MEMBER_BYTES = 64 * 1024 * 1024;



/**
 * Reads a `<repo>.db` or `<repo>.files` (tar, gzip'd, zstd'd or plain) into its packages. Each entry directory's
 * name must match the NAME and VERSION in its desc, as pacman requires.
 */
export async function readSyncDb(source: AsyncIterable<Buffer>, what: string): Promise<SyncDb> {
  const members = new Map<string, { desc?: Buffer; files?: Buffer }>();
  const warnings: string[] = [];
  for await (const entry of readTar(decompressAuto(source, what), { what })) {
    const path = entry.path.replace(/^(\.\/)+/, '');
    if (entry.type === 'dir') continue;
    const slash = path.indexOf('/');
    const dir = path.slice(0, slash);
    const member = path.slice(slash + 1);
    if (entry.type !== 'file' || slash <= 0 || (member !== 'desc' && member !== 'files')) {
      warnings.push(`${what}: unexpected member ${JSON.stringify(entry.name)} skipped`);
      continue;
    }
    const slot = members.get(dir) ?? {};
    if (slot[member] !== undefined) throw new UserError(`${what}: ${displayName(path)} appears twice`);
    slot[member] = await readSmall(entry.content(), MAX_MEMBER_BYTES, `${what}: ${displayName(path)}`);
    members.set(dir, slot);
  }

  const packages: SyncDbPackage[] = [];
  const dirByName = new Map<string, string>();
  for (const [dir, slot] of members) {
    if (slot.desc === undefined) throw new UserError(`${what}: ${displayName(dir)}/ has no desc`);
    const descWhat = `${what}: ${displayName(`${dir}/desc`)}`;
    const desc = readSyncDesc(parseDesc(slot.desc, descWhat), descWhat);
    warnings.push(...desc.warnings);
    if (dir !== `${desc.value.name}-${desc.value.version}`) {
      throw new UserError(`${descWhat}: entry directory does not match NAME ${displayName(desc.value.name)} and VERSION ${displayName(desc.value.version)}`);
    }
    const clash = dirByName.get(desc.value.name);
    if (clash !== undefined) throw new UserError(`${what}: package ${displayName(desc.value.name)} appears twice (${displayName(clash)}, ${displayName(dir)})`);
    dirByName.set(desc.value.name, dir);
    const pkg: SyncDbPackage = { dir, desc: desc.value };
    if (slot.files !== undefined) {
      const filesWhat = `${what}: ${displayName(`${dir}/files`)}`;
      const files = readFilesEntry(parseDesc(slot.files, filesWhat), filesWhat);
      warnings.push(...files.warnings);
      pkg.files = files.value.files;
      pkg.backup = files.value.backup;
    }
    packages.push(pkg);
  }
  packages.sort((a, b) => byteOrder(a.desc.name, b.desc.name));
  return { packages, warnings };
}
