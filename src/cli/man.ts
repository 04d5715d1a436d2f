import type { Command, Option } from 'commander';

/**
 * Man pages made from the live commander program, so that every command and option the CLI has appears in them,
 * with its --help text: repro-oci(1) and one page per command, repro-oci-COMMAND(1) (repro-oci-arch-vercmp(1) for
 * a subcommand). Only the EXAMPLES are written here, in one table. Pure: the same program gives the same bytes
 * (no date, no host); scripts/man-pages.ts writes them at build time.
 */

export interface ManExample {
  /** What it does, one sentence. */
  says: string;
  /** The command line, starting with `repro-oci COMMAND`. */
  command: string;
}

/** EXAMPLES of each command, by its path (`build`, `arch vercmp`); '' is repro-oci(1) itself. */
export const EXAMPLES: Record<string, ManExample[]> = {
  '': [
    { says: 'Run the bundled example offline: generate a small Arch package archive, lock, build twice under different conditions, rebuild from the image:', command: 'repro-oci example' },
    { says: 'Keep it as a workspace to change and build again (hello-ws/README.md says how):', command: 'repro-oci example --dir hello-ws' },
    { says: 'Lock a spec, build it, and rebuild the image from the recipe it carries:', command: 'repro-oci lock spec.yaml\nrepro-oci build spec.yaml -o oci:image:latest\nrepro-oci rebuild oci:image:latest' },
    { says: 'In CI: progress as plain lines on stderr (a phase\'s start, its end, and a line every 5 s between), the JSON result alone on stdout:', command: 'repro-oci build spec.yaml --progress=plain --json -o oci:image:latest > build.json' },
  ],
  lock: [
    { says: 'Resolve spec.yaml into spec.lock.json beside it:', command: 'repro-oci lock spec.yaml' },
    { says: 'Move the lock to a newer Arch Linux Archive snapshot and print what changed (exit 1 when it changed):', command: 'repro-oci lock spec.yaml --update --snapshot 2024-04-01' },
    { says: 'In CI: fail when the lock is missing or was made for another package selection, resolving nothing:', command: 'repro-oci lock spec.yaml --check' },
    { says: "Lock an Arch image built by someone else from its pacman database, each package fetched from the Arch Linux Archive and checked against it (needs network):", command: 'repro-oci lock --from-image docker://docker.io/library/archlinux:latest --keyring /usr/share/pacman/keyrings -o archlinux.lock.json' },
  ],
  build: [
    { says: 'Build a spec from its lock into an OCI layout and a docker archive; prints the manifest digest:', command: 'repro-oci build spec.yaml -o oci:image:latest -o docker-archive:image.tar:hello:latest' },
    { says: 'In CI: never resolve nor write the lock, and refuse setup commands:', command: 'repro-oci build spec.yaml --frozen --no-commands -o oci:image:latest' },
    { says: 'A one-layer image from a directory, with image settings from a file:', command: 'repro-oci build --rootfs rootfs/ --config image.yaml -o oci-archive:image.tar' },
    { says: 'Push straight to a registry, with the SBOMs written out too:', command: 'repro-oci build spec.yaml --sbom sbom/ -o docker://registry.example.org/team/hello:1' },
    { says: "Commit the image to a git branch (dist-amd64) for docker-library's Builder: oci-import; prints the digest, then the official-images stanza:", command: 'repro-oci build spec.yaml -o oci-import:archlinux-oci' },
  ],
  rebuild: [
    { says: 'Rebuild a published image from its recipe; exit 0 when the digest matches, 1 with the differences when not:', command: 'repro-oci rebuild docker://docker.io/example/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' },
    { says: "Rebuild the example workspace's image from any directory, its repositories serving as flat mirrors:", command: 'repro-oci rebuild oci:hello-ws/image:hello --mirror hello-ws/repo/hello-core/os/x86_64 --mirror hello-ws/repo/hello-extra/os/x86_64' },
    { says: 'Refuse a recipe with setup commands, and print the verdict as JSON:', command: 'repro-oci rebuild oci:image:latest --no-commands --json' },
  ],
  diff: [
    { says: 'Explain how two images differ: packages, files (with their owning package), config and manifest:', command: 'repro-oci diff oci:image:hello oci:image:changed' },
    { says: 'Ignore timestamps and order, and keep both sides of each differing file:', command: "repro-oci diff oci:a:latest oci:b:latest --semantic --ignore '/var/log/*' --report-dir report/" },
  ],
  status: [
    { says: "Ask two rebuilders whether each package of a spec's lock was reproduced:", command: 'repro-oci status spec.yaml --rebuilder https://reproducible.archlinux.org --rebuilder https://rebuilder.example.org' },
    { says: 'Require two verified GOOD answers per package for an image (three for linux*), as JSON:', command: "repro-oci status docker://docker.io/library/archlinux:latest --rebuilders rebuilders.yaml --require 2 --require 'linux*=3' --json" },
    { says: "Check a rebuilder's attestations with a key you hold, and show one package in full:", command: 'repro-oci status spec.lock.json --rebuilder https://reproducible.archlinux.org=archlinux-rebuilder.pem --explain glibc' },
  ],
  publish: [
    { says: 'Build, rebuild in an isolated process, and push the image with its recipe and a signed attestation, tag last:', command: 'repro-oci publish spec.yaml --to docker://registry.example.org/team/hello:1 --key signing.key' },
    { says: 'Also require two verified GOOD answers per package from the rebuilders in a file; check everything, push nothing:', command: 'repro-oci publish spec.yaml --to docker://registry.example.org/team/hello:1 --key signing.key --rebuilders rebuilders.yaml --require-rebuilders 2 --dry-run' },
  ],
  verify: [
    { says: "Check a published image's signed attestation with the publisher's public key (exit 0 verified, 1 not, naming the claim that failed):", command: 'repro-oci verify docker://registry.example.org/team/hello:1 --key release.pub' },
    { says: 'Also require the package policy of a rebuilders file, and rebuild the image here too:', command: 'repro-oci verify docker://registry.example.org/team/hello:1 --key release.pub --policy rebuilders.yaml --rebuild --json' },
  ],
  'key generate': [
    { says: 'Make an ed25519 key pair, signing.key (mode 0600) and signing.pub; prints the key id:', command: 'repro-oci key generate -o signing' },
    { says: 'An ECDSA P-256 key pair instead, described as JSON:', command: 'repro-oci key generate --type ecdsa-p256 -o keys/release --json' },
  ],
  inspect: [
    { says: 'Show an image: manifests, config, layers with digests, diffIDs and sizes:', command: 'repro-oci inspect oci:image:latest' },
    { says: 'The same as JSON, from a registry:', command: 'repro-oci inspect docker://docker.io/library/archlinux:latest --json' },
  ],
  copy: [
    { says: 'Push an OCI layout to a registry, keeping every digest:', command: 'repro-oci copy oci:image:latest docker://registry.example.org/team/hello:1' },
    { says: 'Copy between registries with credentials for each side:', command: 'repro-oci copy docker://a.example.org/x:1 docker://b.example.org/x:1 --src-creds reader:secret --dest-creds writer:secret' },
  ],
  archive: [
    { says: 'Keep the exact manifest, config and recipe of a published image, to rebuild it after the registry forgets it:', command: 'repro-oci archive docker://docker.io/example/hello:1 oci:kept:hello' },
    { says: 'Keep the layers too:', command: 'repro-oci archive docker://docker.io/example/hello:1 oci:kept:hello --layers' },
  ],
  install: [
    { says: 'Install the packages of a lock into a directory to look at them:', command: 'repro-oci install spec.lock.json --root tree/' },
    { says: 'The same, with packages from a local flat mirror:', command: 'repro-oci install spec.lock.json --root tree/ --mirror /srv/packages' },
  ],
  ls: [
    { says: 'List the tree a lock installs: mode, owner, size, path and owning package:', command: 'repro-oci ls spec.lock.json' },
    { says: 'As pacman would with a NoExtract rule:', command: "repro-oci ls spec.lock.json --noextract 'usr/share/man/*'" },
  ],
  'arch vercmp': [
    { says: 'Compare two versions as pacman does; prints -1:', command: 'repro-oci arch vercmp 1.2-1 1:1.0-1' },
  ],
  example: [
    { says: 'Run the bundled example; nothing is kept:', command: 'repro-oci example' },
    { says: 'Keep it as a workspace, then generate its repositories again after editing its packages.yaml:', command: 'repro-oci example --dir hello-ws\nrepro-oci example --dir hello-ws --repo-only' },
  ],
};

/** Every command that runs something (a group such as `arch` only holds subcommands), with its path, in --help order. */
export function leafCommands(program: Command): { path: string; command: Command }[] {
  const out: { path: string; command: Command }[] = [];
  const walk = (command: Command, prefix: string[]): void => {
    for (const sub of command.commands) {
      const path = [...prefix, sub.name()];
      if (sub.commands.length) walk(sub, path);
      else out.push({ path: path.join(' '), command: sub });
    }
  };
  walk(program, []);
  return out;
}

/** The page name of a command path: `repro-oci-arch-vercmp`. */
export function pageName(path: string): string {
  return path ? `repro-oci-${path.replace(/ /g, '-')}` : 'repro-oci';
}

/** Text for a roff text line: backslashes and hyphens escaped (so options copy as ASCII), no leading control character. */
function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^[.']/gm, '\\&$&');
}

/** The part of a description before its first detail, for NAME (what whatis and apropos show). */
function summary(description: string): string {
  const cut = description.search(/: |; | \(/);
  return cut > 0 ? description.slice(0, cut) : description;
}

function optionDefault(option: Option): string {
  if (option.defaultValueDescription) return ` (default: ${option.defaultValueDescription})`;
  const value: unknown = option.defaultValue;
  if (value === undefined || typeof value === 'boolean' || (Array.isArray(value) && value.length === 0)) return '';
  return ` (default: ${JSON.stringify(value)})`;
}

function optionItems(options: readonly Option[]): string[] {
  return options.flatMap((option) => ['.TP', `.B ${roff(option.flags)}`, roff(`${option.description}${optionDefault(option)}`)]);
}

function examplesSection(path: string): string[] {
  const lines = ['.SH EXAMPLES'];
  for (const example of EXAMPLES[path] ?? []) {
    lines.push('.PP', roff(example.says), '.PP', '.RS 4', '.EX', ...example.command.split('\n').map(roff), '.EE', '.RE');
  }
  return lines;
}

const EXIT_STATUS = [
  '.SH EXIT STATUS',
  '.TP',
  '.B 0',
  'Success, or a positive verdict (same, reproducible, policy met).',
  '.TP',
  '.B 1',
  roff('A negative verdict: diff found differences, rebuild or example did not reproduce, status found the policy not met, lock --check found the lock missing or stale, lock --update changed the lock.'),
  '.TP',
  '.B 2',
  'An error, printed as one line.',
];

const ENVIRONMENT: [string, string][] = [
  ['REPRO_OCI_CACHE', 'The package cache (default ~/.cache/repro-oci); --cache overrides it.'],
  ['SOURCE_DATE_EPOCH', 'The timestamp of a build when --source-date-epoch is not given; a spec build otherwise takes its lock\'s date, never the clock.'],
  ['REGISTRY_AUTH_FILE', 'Registry credentials, as containers-auth.json(5); then auth.json of containers and ~/.docker/config.json.'],
  ['XDG_CONFIG_HOME', 'Where status looks for repro-oci/rebuilders.yaml (default ~/.config).'],
  ['REPRO_OCI_STATE', "Where status pins rebuilders' keys on first use (default $XDG_STATE_HOME/repro-oci, else ~/.local/state/repro-oci)."],
  ['REPRO_OCI_PROGRESS', 'The progress mode when --progress is not given: auto, tty, plain or none; 0 is none, 1 is auto.'],
  ['TMPDIR', 'Where scratch directories are made.'],
  ['REPRO_OCI_MEMORY_SCRATCH', 'A directory on a tmpfs for the tree that setup commands (two copies), scriptlets and hooks (one, as overlayfs layers) run on, used when it has room for it and two runs\' disk limits (default /dev/shm); off keeps it in TMPDIR.'],
];

function environmentSection(): string[] {
  return ['.SH ENVIRONMENT', ...ENVIRONMENT.flatMap(([name, text]) => ['.TP', `.B ${name}`, roff(text)])];
}

function header(name: string, version: string, what: string): string[] {
  return [
    `.\\" Generated from the repro-oci command definitions by scripts/man-pages.ts: do not edit.`,
    `.TH ${name.toUpperCase().replace(/-/g, '\\-')} 1 "" "repro-oci ${version}" "repro-oci manual"`,
    '.SH NAME',
    `${roff(name)} \\- ${roff(what)}`,
  ];
}

function commandPage(program: Command, path: string, command: Command, version: string): string {
  const help = command.createHelp();
  const description = command.description();
  const lines = [...header(pageName(path), version, summary(description)), '.SH SYNOPSIS', `.B ${roff(`repro-oci ${path}`)}`];
  const usage = help.commandUsage(command).replace(new RegExp(`^${program.name()} ${path} ?`), '');
  if (usage) lines.push(roff(usage));
  lines.push('.SH DESCRIPTION', roff(`${description}.`));
  const args = help.visibleArguments(command);
  if (args.length) {
    lines.push('.SH ARGUMENTS');
    for (const arg of args) lines.push('.TP', `.I ${roff(arg.name())}`, roff(arg.description || (arg.required ? 'required' : 'optional')));
  }
  lines.push('.SH OPTIONS', ...optionItems(help.visibleOptions(command)));
  const global = help.visibleGlobalOptions(command);
  if (global.length) lines.push('.SH GLOBAL OPTIONS', roff('Given before or after the command.'), ...optionItems(global));
  lines.push(...EXIT_STATUS, ...environmentSection(), ...examplesSection(path), '.SH SEE ALSO', '.BR repro\\-oci (1)');
  return `${lines.join('\n')}\n`;
}

function mainPage(program: Command, version: string): string {
  const lines = [...header('repro-oci', version, program.description()), '.SH SYNOPSIS', '.B repro\\-oci', '.I command', '[\\fIoptions\\fR] [\\fIarguments\\fR]', '.br', '.B repro\\-oci', '\\-\\-help | \\-\\-version'];
  lines.push(
    '.SH DESCRIPTION',
    roff(`${program.description()}: every byte of an image is a function of its inputs (a spec and the lock of exact package files it resolves to), never of the clock, the umask, the locale, the host or the directory order. The image carries its recipe, so that it can later be rebuilt from the image alone and compared.`),
    '.SH OPTIONS',
    ...optionItems(program.createHelp().visibleOptions(program)),
    '.SH COMMANDS',
  );
  for (const { path, command } of leafCommands(program)) {
    lines.push('.TP', `.BR ${roff(pageName(path))} (1)`, roff(`${command.description()}.`));
  }
  lines.push(...EXIT_STATUS, ...environmentSection(), ...examplesSection(''), '.SH SEE ALSO');
  lines.push(leafCommands(program).map(({ path }) => `.BR ${roff(pageName(path))} (1),`).join('\n'), '.BR skopeo (1),', '.BR pacman (8),', '.BR containers\\-transports (5)');
  return `${lines.join('\n')}\n`;
}

/** Every page, by file name (`repro-oci.1`, `repro-oci-build.1`, …), sorted. */
export function renderManPages(program: Command, version: string): Map<string, string> {
  const pages = new Map<string, string>([['repro-oci.1', mainPage(program, version)]]);
  for (const { path, command } of leafCommands(program)) pages.set(`${pageName(path)}.1`, commandPage(program, path, command, version));
  return new Map([...pages].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
