import { PathPatterns } from '../install/noextract.js';

/**
 * Files that no package installs but that every Arch image has, because the build made them after pacman: what
 * archlinux-docker's make-rootfs.sh and Dockerfile run (docs: shared reference arch-image-pipeline), and pacman's
 * own state. Each is named with who makes it and how it is checked: regenerated in the sandbox from the image's own
 * packages and compared, compared with the one value it can have, or — where no rerun can give the same bytes —
 * named with the reason it is not regenerated.
 */

/** A command rerun in the sandbox, from the installed packages, to regenerate files; run in this order. */
export interface Regenerator {
  id: 'update-ca-trust' | 'systemd-sysusers' | 'ldconfig';
  command: string[];
  /** The program, as installed by a package: without it the files are not regenerated. */
  program: string;
}

/** archlinux-docker's order: update-ca-trust and systemd-sysusers in make-rootfs.sh, then the Dockerfile's `RUN ldconfig`. */
export const REGENERATORS: readonly Regenerator[] = [
  { id: 'update-ca-trust', command: ['update-ca-trust'], program: 'usr/bin/update-ca-trust' },
  { id: 'systemd-sysusers', command: ['systemd-sysusers'], program: 'usr/bin/systemd-sysusers' },
  { id: 'ldconfig', command: ['ldconfig'], program: 'usr/bin/ldconfig' },
];

export type GeneratedCheck =
  | { kind: 'regenerate'; regenerator: Regenerator['id'] }
  /** archlinux-docker's overlay file: exactly this content, 0644, root. */
  | { kind: 'overlay-file'; content: string }
  /** `ln -fs /usr/lib/os-release etc/os-release`, or the Dockerfile's `sed -i` of it (IMAGE_ID, IMAGE_VERSION). */
  | { kind: 'os-release' }
  | { kind: 'none'; reason: string };

export interface GeneratedRule {
  /** NoExtract-style patterns (fnmatch, `*` crosses `/`). */
  patterns: string[];
  /** Who makes these files, as a reader knows it. */
  by: string;
  check: GeneratedCheck;
}

export const GENERATED_RULES: readonly GeneratedRule[] = [
  { patterns: ['etc/ld.so.cache'], by: 'ldconfig', check: { kind: 'regenerate', regenerator: 'ldconfig' } },
  { patterns: ['var/cache/ldconfig/aux-cache'], by: 'ldconfig', check: { kind: 'none', reason: 'it records the build machine\'s inode numbers and change times' } },
  { patterns: ['etc/ca-certificates/extracted/*', 'etc/ssl/certs/*'], by: 'update-ca-trust', check: { kind: 'regenerate', regenerator: 'update-ca-trust' } },
  { patterns: ['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow', 'etc/passwd-', 'etc/group-', 'etc/shadow-', 'etc/gshadow-', 'etc/.pwd.lock'], by: 'systemd-sysusers (root\'s password locked)', check: { kind: 'regenerate', regenerator: 'systemd-sysusers' } },
  { patterns: ['etc/locale.conf'], by: 'archlinux-docker\'s overlay', check: { kind: 'overlay-file', content: 'LANG=C.UTF-8\n' } },
  { patterns: ['etc/os-release'], by: 'archlinux-docker (os-release link, or its Dockerfile\'s sed)', check: { kind: 'os-release' } },
  { patterns: ['etc/pacman.d/gnupg', 'etc/pacman.d/gnupg/*'], by: 'pacman-key --init/--populate', check: { kind: 'none', reason: '--init makes a random master key and --populate signs with it' } },
  { patterns: ['var/lib/pacman/sync', 'var/lib/pacman/sync/*'], by: 'pacman -Sy (sync databases)', check: { kind: 'none', reason: 'the repositories\' databases of the build day are not known' } },
  { patterns: ['var/log/pacman.log'], by: 'pacman (its log)', check: { kind: 'none', reason: 'it records the wall clock' } },
  { patterns: ['var/cache/pacman', 'var/cache/pacman/pkg', 'var/cache/pacman/pkg/*'], by: 'pacman (its package cache)', check: { kind: 'none', reason: 'what the build downloaded' } },
  { patterns: ['etc/machine-id', 'etc/hostname', 'etc/resolv.conf'], by: 'the container runtime or systemd', check: { kind: 'none', reason: 'per machine' } },
  { patterns: ['usr/lib/locale/locale-archive'], by: 'locale-gen', check: { kind: 'none', reason: 'locale-gen is not rerun here' } },
];

const MATCHERS = GENERATED_RULES.map((rule) => ({ rule, patterns: new PathPatterns(rule.patterns) }));

/** The rule explaining a path no package installed (or that differs from its package's), if any. */
export function generatedRule(path: string): GeneratedRule | undefined {
  return MATCHERS.find((m) => m.patterns.matches(path))?.rule;
}

/** Lines of os-release the Dockerfile's `sed -i` sets (archlinux-docker writes the image's id and version). */
const IMAGE_LINES = /^(IMAGE_ID|IMAGE_VERSION)=/;

/** Whether an os-release file is the package's with only IMAGE_ID/IMAGE_VERSION lines set or added. */
export function isEditedOsRelease(image: Buffer, pkg: Buffer): boolean {
  const lines = (b: Buffer): string[] => b.toString('latin1').split('\n').filter((l) => l !== '' && !IMAGE_LINES.test(l));
  const [a, b] = [lines(image), lines(pkg)];
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

/** Where archlinux-docker's link points (`ln -fs /usr/lib/os-release`), and the filesystem package's own. */
export const OS_RELEASE_TARGETS = ['/usr/lib/os-release', '../usr/lib/os-release'];
