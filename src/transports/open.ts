import { createDockerArchiveDestination, createOciArchiveDestination, openDockerArchiveSource, openOciArchiveSource } from './archive.js';
import { LayoutDestination, LayoutSource } from './layout.js';
import { OciImportDestination, openOciImportSource } from './oci-import.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import { RegistryDestination, type RegistryDestinationOptions } from './registry/destination.js';
import { RegistrySource, type RegistrySourceOptions } from './registry/source.js';
import type { ImageDestination, ImageSource } from './types.js';
import { bootstrapTarballPath } from '../bootstrap/tarball.js';
import { openTarballSource } from '../bootstrap/source.js';

/** Options that only some transports use (the registry: credentials, --insecure, platform, upload chunk size). */
export type TransportOptions = RegistrySourceOptions & RegistryDestinationOptions;

export async function openSource(reference: string | ImageReference, options: TransportOptions = {}): Promise<ImageSource> {
  // A bootstrap tarball (bootstrap:FILE, or a bare FILE.tar.zst): read as a one-layer image, for diff.
  const tarball = typeof reference === 'string' ? bootstrapTarballPath(reference) : undefined;
  if (tarball !== undefined) return openTarballSource(tarball);
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'oci':
      return LayoutSource.open(ref.path, ref.tag, formatReference(ref));
    case 'oci-archive':
      return openOciArchiveSource(ref.path, ref.tag);
    case 'docker-archive':
      return openDockerArchiveSource(ref.path, ref.name, ref.sourceIndex);
    case 'docker':
      return RegistrySource.open(ref, options);
    case 'oci-import':
      return openOciImportSource(ref.path, ref.branch, formatReference(ref));
  }
}

export async function openDestination(reference: string | ImageReference, options: TransportOptions = {}): Promise<ImageDestination> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'oci':
      return LayoutDestination.create(ref.path, ref.tag, formatReference(ref));
    case 'oci-archive':
      return createOciArchiveDestination(ref.path, ref.tag);
    case 'docker-archive':
      return createDockerArchiveDestination(ref.path, ref.name);
    case 'docker':
      return RegistryDestination.create(ref, options);
    case 'oci-import':
      return OciImportDestination.create(ref.path, ref.branch, formatReference(ref));
  }
}
