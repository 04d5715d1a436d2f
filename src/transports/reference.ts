import { UserError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { formatDockerReference, parseDockerReference } from './registry/reference.js';

/**
 * Image references in the containers-transports(5) syntax that skopeo uses:
 * `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME[:TAG]|:@INDEX]`,
 * `docker://[HOST[:PORT]/]NAME[:TAG][@sha256:…]`; and repro-oci's own `oci-import:DIR[:BRANCH]`, a git branch
 * holding a layout for docker-library's `Builder: oci-import` (oci-import.ts).
 */
export type ImageReference =
  | { transport: 'oci'; path: string; tag?: string }
  | { transport: 'oci-archive'; path: string; tag?: string }
  | { transport: 'docker-archive'; path: string; name?: string; sourceIndex?: number }
  | { transport: 'docker'; registry: string; repository: string; tag?: string; digest?: Digest }
  | { transport: 'oci-import'; path: string; branch?: string };

export const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive', 'docker', 'oci-import'] as const;

// OCI tag grammar from the image-spec annotations (ref.name may be any string, but a tag this shape is what tools expect).
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A branch name git's check-ref-format accepts, conservatively: letters, digits, `. _ + -` in `/`-separated parts. */
export function checkBranchName(branch: string, what: string): string {
  const partOk = (part: string): boolean => /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/.test(part) && !part.endsWith('.') && !part.endsWith('.lock');
  if (branch.length === 0 || branch.length > 200 || branch.includes('..') || !branch.split('/').every(partOk)) {
    throw new UserError(`${what}: invalid branch name ${JSON.stringify(branch)}: use letters, digits and . _ + - in /-separated parts, each starting with a letter, digit or _ (no '..', no '.lock' ending)`);
  }
  return branch;
}

export function parseReference(text: string): ImageReference {
  const colon = text.indexOf(':');
  const transport = colon === -1 ? '' : text.slice(0, colon);
  const rest = colon === -1 ? '' : text.slice(colon + 1);
  switch (transport) {
    case 'docker': {
      if (!rest.startsWith('//')) throw new UserError(`${text}: expected docker://HOST/NAME[:TAG|@DIGEST]`);
      return { transport, ...parseDockerReference(rest.slice(2), text) };
    }
    case 'oci':
    case 'oci-archive': {
      const [path, ...tagParts] = rest.split(':');
      if (!path) throw new UserError(`${text}: no path after ${transport}:`);
      if (tagParts.length > 1) throw new UserError(`${text}: a path with ':' is not supported`);
      const tag = tagParts[0];
      if (tag !== undefined && !TAG_RE.test(tag)) throw new UserError(`${text}: invalid tag ${JSON.stringify(tag)}`);
      return tag === undefined ? { transport, path } : { transport, path, tag };
    }
    case 'oci-import': {
      const [path, ...branchParts] = rest.split(':');
      if (!path) throw new UserError(`${text}: no path after oci-import:`);
      if (branchParts.length > 1) throw new UserError(`${text}: a path with ':' is not supported`);
      const branch = branchParts[0];
      return branch === undefined ? { transport, path } : { transport, path, branch: checkBranchName(branch, text) };
    }
    case 'docker-archive': {
      const sep = rest.indexOf(':');
      const path = sep === -1 ? rest : rest.slice(0, sep);
      if (!path) throw new UserError(`${text}: no path after docker-archive:`);
      if (sep === -1) return { transport, path };
      const spec = rest.slice(sep + 1);
      if (spec.startsWith('@')) {
        const index = Number(spec.slice(1));
        if (!Number.isSafeInteger(index) || index < 0) throw new UserError(`${text}: invalid source index ${spec}`);
        return { transport, path, sourceIndex: index };
      }
      return { transport, path, name: normalizeDockerName(spec, text) };
    }
    default:
      throw new UserError(`${JSON.stringify(text)} is not an image reference: expected one of ${TRANSPORTS.map((t) => (t === 'docker' ? 'docker://…' : `${t}:…`)).join(', ')}`);
  }
}

/** `name[:tag]` as docker writes it in RepoTags: lowercase repository, default tag `latest`. */
function normalizeDockerName(spec: string, text: string): string {
  const lastSlash = spec.lastIndexOf('/');
  const tagColon = spec.indexOf(':', lastSlash + 1);
  const repo = tagColon === -1 ? spec : spec.slice(0, tagColon);
  const tag = tagColon === -1 ? 'latest' : spec.slice(tagColon + 1);
  if (spec.includes('@')) throw new UserError(`${text}: docker-archive names cannot carry a digest`);
  if (!/^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$/.test(repo)) {
    throw new UserError(`${text}: invalid image name ${JSON.stringify(repo)}`);
  }
  if (!TAG_RE.test(tag)) throw new UserError(`${text}: invalid tag ${JSON.stringify(tag)}`);
  return `${repo}:${tag}`;
}

export function formatReference(ref: ImageReference): string {
  switch (ref.transport) {
    case 'oci':
    case 'oci-archive':
      return `${ref.transport}:${ref.path}${ref.tag ? `:${ref.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name ? `:${ref.name}` : ref.sourceIndex !== undefined ? `:@${ref.sourceIndex}` : ''}`;
    case 'docker':
      return `docker://${formatDockerReference(ref)}`;
    case 'oci-import':
      return `oci-import:${ref.path}${ref.branch ? `:${ref.branch}` : ''}`;
  }
}
