import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throwaway OpenPGP keys made by the real `gpg` in a private GNUPGHOME, for tests that sign packages, databases
 * or anything else. No passphrases; `at` fakes gpg's clock (a Date or Unix seconds) to make keys and signatures
 * in the past.
 */

export type When = Date | number | undefined;

export interface GenKeyOptions {
  /** `ed25519` (default) or `rsa2048` etc., as `gpg --quick-gen-key` takes it. */
  algo?: string;
  /** `gpg --quick-gen-key` usage; default `sign` (a primary key always certifies too). */
  usage?: string;
  /** `never` (default), `2y`, `90d`, an ISO date... relative values count from `at`. */
  expire?: string;
  at?: When;
}

export class Gpg {
  private constructor(readonly home: string) {}

  /** A fresh GNUPGHOME under the system temp directory; call dispose() when done. */
  static async create(): Promise<Gpg> {
    return new Gpg(await mkdtemp(join(tmpdir(), 'repro-oci-gpg-')));
  }

  /** Runs gpg in batch mode in this home and returns its stdout; throws with stderr on a non-zero exit. */
  async run(args: readonly string[], options: { input?: Buffer | string; at?: When } = {}): Promise<Buffer> {
    const time = options.at === undefined ? [] : ['--faked-system-time', `${toSeconds(options.at)}!`, '--ignore-time-conflict'];
    const fullArgs = ['--batch', '--no-tty', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', '', ...time, ...args];
    return new Promise((resolve, reject) => {
      const child = spawn('gpg', fullArgs, { env: { ...process.env, GNUPGHOME: this.home, LC_ALL: 'C' } });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out));
        else reject(new Error(`gpg ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString().trim()}`));
      });
      child.stdin.on('error', () => {}); // a gpg that exits without reading its input reports through its exit code
      child.stdin.end(options.input ?? '');
    });
  }

  /** Generates a key for `userId` and returns its upper-case fingerprint. */
  async genKey(userId: string, options: GenKeyOptions = {}): Promise<string> {
    await this.run(['--quick-gen-key', userId, options.algo ?? 'ed25519', options.usage ?? 'sign', options.expire ?? 'never'], { at: options.at });
    return this.fingerprint(userId);
  }

  /** Adds a subkey and returns its fingerprint (the newest subkey of the key). */
  async addSubkey(fingerprint: string, options: GenKeyOptions = {}): Promise<string> {
    await this.run(['--quick-add-key', fingerprint, options.algo ?? 'ed25519', options.usage ?? 'sign', options.expire ?? 'never'], { at: options.at });
    const fprs = await this.fingerprints(fingerprint);
    return fprs[fprs.length - 1] as string;
  }

  /** `signer` certifies every user ID of `target` (an exportable certification). */
  async certify(signer: string, target: string, at?: When): Promise<void> {
    await this.run(['--default-key', signer, '--quick-sign-key', target], { at });
  }

  /** Sets a new expiry for the primary key (a new self-signature). */
  async setExpire(fingerprint: string, expire: string, at?: When): Promise<void> {
    await this.run(['--quick-set-expire', fingerprint, expire], { at });
  }

  /** A binary detached signature of `data`, as `gpg --detach-sign` (and makepkg, repo-add) make it. */
  async detachSign(signer: string, data: Buffer, at?: When): Promise<Buffer> {
    // gpg picks the newest signing subkey of `signer`; pass `FINGERPRINT!` to force that exact (sub)key.
    return this.run(['--local-user', signer, '--detach-sign', '--output', '-'], { input: data, at });
  }

  /** Imports the revocation certificate gpg wrote when it generated the key: the key becomes revoked. */
  async revoke(fingerprint: string): Promise<void> {
    const cert = await readFile(join(this.home, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8');
    // gpg prefixes the armor line with ':' so that the file cannot be imported by accident.
    await this.run(['--import'], { input: cert.replace(/^:-----BEGIN/m, '-----BEGIN') });
  }

  /** Public keys (all when none are named), binary unless `armor`. */
  async exportPublic(fingerprints: readonly string[] = [], armor = false): Promise<Buffer> {
    return this.run([...(armor ? ['--armor'] : []), '--export', ...fingerprints]);
  }

  /**
   * A keyring in archlinux-keyring's format in `dir`: `NAME.gpg` with the public `keys`, `NAME-trusted` listing
   * `trusted` (each a trusted master, `FPR:4:`), `NAME-revoked` listing `revoked`.
   */
  async writeKeyring(dir: string, name: string, keys: readonly string[], options: { trusted?: readonly string[]; revoked?: readonly string[] } = {}): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${name}.gpg`), await this.exportPublic(keys));
    await writeFile(join(dir, `${name}-trusted`), (options.trusted ?? []).map((f) => `${f}:4:\n`).join(''));
    await writeFile(join(dir, `${name}-revoked`), (options.revoked ?? []).map((f) => `${f}\n`).join(''));
  }

  /** Primary key fingerprint of the single key matching `query`. */
  async fingerprint(query: string): Promise<string> {
    const fprs = await this.fingerprints(query);
    if (fprs.length === 0) throw new Error(`gpg: no key matches ${query}`);
    return fprs[0] as string;
  }

  /** The primary key's fingerprint, then its subkeys', in gpg's listing order. */
  async fingerprints(query: string): Promise<string[]> {
    const listing = (await this.run(['--with-colons', '--fingerprint', '--list-keys', query])).toString();
    return listing
      .split('\n')
      .filter((line) => line.startsWith('fpr:'))
      .map((line) => (line.split(':')[9] ?? '').toUpperCase());
  }

  /** Stops this home's gpg-agent and deletes the home. */
  async dispose(): Promise<void> {
    spawnSync('gpgconf', ['--kill', 'all'], { env: { ...process.env, GNUPGHOME: this.home }, stdio: 'ignore' });
    await rm(this.home, { recursive: true, force: true });
  }
}

function toSeconds(when: Date | number): number {
  return typeof when === 'number' ? when : Math.floor(when.getTime() / 1000);
}
