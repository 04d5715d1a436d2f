import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Owner marks for temporary paths, so that a later run can remove what a killed one (SIGKILL, power loss) left
 * behind without ever touching the temporaries of a process that is still running.
 *
 * A mark is `PID.START.SPACE`: the pid, its start time (clock ticks since boot, field 22 of /proc/PID/stat, so a
 * reused pid is not taken for the owner) and a short hash of the boot and pid namespace the pid belongs to (a
 * TMPDIR shared with a container or over NFS holds pids that mean nothing here: those are never judged).
 */
export const OWNER_MARK = String.raw`(\d{1,10})\.(\d{1,20})\.([0-9a-f]{8})`;

/** Start time of a process, or undefined when it does not exist. Throws when /proc cannot tell. */
function startTime(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself: count after the last.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  if (start === undefined || !/^\d+$/.test(start)) throw new Error(`/proc/${pid}/stat: no start time`);
  return start;
}

function pidSpace(): string {
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  const namespace = readlinkSync('/proc/self/ns/pid');
  return createHash('sha256').update(`${boot}\n${namespace}`).digest('hex').slice(0, 8);
}

let ours: { mark: string; space: string } | null | undefined;

/** This process's identity, or null where /proc cannot give it (its temporaries then go unmarked). */
function identity(): { mark: string; space: string } | null {
  if (ours === undefined) {
    try {
      const space = pidSpace();
      ours = { mark: `${process.pid}.${startTime('self')!}.${space}`, space };
    } catch {
      ours = null;
    }
  }
  return ours;
}

/** The owner mark of this process, or undefined where it cannot have one. */
export function ownerMark(): string | undefined {
  return identity()?.mark;
}

/**
 * Whether the process a mark names is certainly gone: its pid does not exist, or now belongs to a process that
 * started at another time. Anything uncertain (another pid namespace or boot, /proc unreadable) counts as alive.
 */
export function ownerIsGone(pid: string, start: string, space: string): boolean {
  const self = identity();
  if (!self || space !== self.space) return false;
  try {
    const now = startTime(Number(pid));
    return now === undefined || now !== start;
  } catch {
    return false;
  }
}

const WHOLE_MARK = new RegExp(`^${OWNER_MARK}$`);

/** ownerIsGone() for a mark as ownerMark() writes it; text that is not a mark counts as alive. */
export function markIsGone(mark: string): boolean {
  const parts = WHOLE_MARK.exec(mark);
  return parts !== null && ownerIsGone(parts[1]!, parts[2]!, parts[3]!);
}
