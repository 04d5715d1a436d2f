import { DigestMismatchError } from '../../errors.js';
import { digestHex, sha256, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/mediatypes.js';
import { checkIndex, MAX_JSON_BYTES, parseRawJson } from '../../oci/raw-json.js';
import type { Descriptor } from '../../oci/types.js';
import { repositoryScope } from './auth.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { readBody, withRetries } from './http.js';
import { formatDockerReference, type DockerReference } from './reference.js';

export interface Referrers {
  /** The descriptors of manifests whose `subject` is the digest. */
  manifests: Descriptor[];
  /** `api` when the registry answered the referrers API, `tag-schema` when the `sha256-<hex>` tag was read instead. */
  via: 'api' | 'tag-schema';
}

/** The tag under which the referrers tag schema (distribution-spec 1.1) keeps the referrers index of `digest`. */
export function referrersTag(digest: Digest): string {
  return `sha256-${digestHex(digest)}`;
}

/**
 * Lists what refers to `subject` in `ref`'s repository: `GET /v2/<name>/referrers/<digest>` when the registry
 * implements it, else the index tagged `sha256-<hex>` (none there is an empty list). `artifactType` filters.
 */
export async function listReferrers(ref: DockerReference, subject: Digest, options: RegistryOptions & { artifactType?: string; client?: RegistryClient } = {}): Promise<Referrers> {
  const client = options.client ?? (await RegistryClient.create(ref.registry, ref.repository, options));
  const scopes = [repositoryScope(ref.repository, 'pull')];
  const label = `docker://${formatDockerReference({ registry: ref.registry, repository: ref.repository })}`;
  const fetchIndex = async (path: string, what: string, accept: string): Promise<{ status: number; bytes?: Buffer; contentType?: string | null; headerDigest?: string | null }> =>
    withRetries(what, client.retry, async () => {
      const response = await client.request('GET', path, { scopes, headers: { Accept: accept }, what });
      if (response.status === 404) {
        await response.body?.cancel().catch(() => {});
        return { status: 404 };
      }
      if (response.status !== 200) throw await client.unexpected(response, what);
      const bytes = await readBody(response, response.url, MAX_JSON_BYTES, what);
      return { status: 200, bytes, contentType: response.headers.get('content-type'), headerDigest: response.headers.get('docker-content-digest') };
    });

  const filter = options.artifactType ? `?${new URLSearchParams({ artifactType: options.artifactType })}` : '';
  const apiWhat = `${label}: referrers of ${subject}`;
  const api = await fetchIndex(`/v2/${ref.repository}/referrers/${subject}${filter}`, apiWhat, MediaType.OciIndex);
  let via: Referrers['via'] = 'api';
  let result = api;
  let what = apiWhat;
  // A registry without the API answers 404; one that misroutes it may answer with something that is not an index.
  const apiIsIndex = api.status === 200 && (api.contentType ?? '').split(';')[0]!.trim() === MediaType.OciIndex;
  if (!apiIsIndex) {
    via = 'tag-schema';
    what = `${label}: referrers tag ${referrersTag(subject)}`;
    result = await fetchIndex(`/v2/${ref.repository}/manifests/${referrersTag(subject)}`, what, MediaType.OciIndex);
    if (result.status === 404) return { manifests: [], via };
    if (result.headerDigest && result.headerDigest !== sha256(result.bytes!)) {
      throw new DigestMismatchError(`${what}: Docker-Content-Digest ${result.headerDigest} does not match the bytes received`);
    }
  }
  const index = checkIndex(parseRawJson(result.bytes!, what), what).value;
  let manifests = index.manifests;
  // The API may ignore the filter (it says so in OCI-Filters-Applied); the tag schema never filters.
  if (options.artifactType) manifests = manifests.filter((d) => d.artifactType === options.artifactType);
  return { manifests, via };
}
