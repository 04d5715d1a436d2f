import { UserError } from '../../errors.js';
import { parseDigest, type Digest } from '../../oci/digest.js';

/**
 * A reference to an image in a registry, as `docker://` names it (containers-transports(5)): `[HOST[:PORT]/]NAME[:TAG][@sha256:…]`.
 * Docker Hub defaults apply when the first component is not a host: `docker.io`, and `library/` for one-part names.
 */
export interface DockerReference {
  /** The registry as named (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`); lowercased. */
  registry: string;
  /** The repository path inside the registry (`library/alpine`). */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API actually answers. */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** Parses what follows `docker://`. */
export function parseDockerReference(text: string, label = `docker://${text}`): DockerReference {
  if (!text) throw new UserError(`${label}: no image name after docker://`);
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = parseDigest(rest.slice(at + 1), `${label}: digest`);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const tagColon = rest.indexOf(':', lastSlash + 1);
  // A colon after the last slash is a tag, unless the whole reference is a bare host:port (no slash at all is a name).
  if (tagColon !== -1) {
    tag = rest.slice(tagColon + 1);
    rest = rest.slice(0, tagColon);
    if (!TAG_RE.test(tag)) throw new UserError(`${label}: invalid tag ${JSON.stringify(tag)}`);
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  let registry: string;
  let repository: string;
  if (first && (first.includes('.') || first.includes(':') || first.startsWith('[') || first === 'localhost' || first !== first.toLowerCase())) {
    registry = first.toLowerCase();
    repository = rest.slice(slash + 1);
    if (!HOST_RE.test(first)) throw new UserError(`${label}: invalid registry host ${JSON.stringify(first)}`);
  } else {
    registry = DOCKER_HUB;
    repository = rest;
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!repository || !repository.split('/').every((c) => PATH_COMPONENT_RE.test(c))) {
    throw new UserError(`${label}: invalid repository name ${JSON.stringify(repository)} (lowercase letters, digits and separators)`);
  }
  if (repository.length > 255) throw new UserError(`${label}: repository name is longer than 255 characters`);
  const ref: DockerReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `HOST/NAME[:TAG][@DIGEST]`, the fully qualified form (no `docker://`). */
export function formatDockerReference(ref: DockerReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The host[:port] the registry API is reached at. */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

/** The host part of `host[:port]` or `[v6]:port`, without brackets. */
export function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

/** Loopback hosts, the only ones spoken to over plain http unless asked to. */
export function isLoopbackHost(registry: string): boolean {
  const host = hostOf(registry).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
