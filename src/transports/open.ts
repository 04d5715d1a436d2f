import { createDockerArchiveDestination, createOciArchiveDestination, openDockerArchiveSource, openOciArchiveSource } from './archive.js';
import { LayoutDestination, LayoutSource } from './layout.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import type { ImageDestination, ImageSource } from './types.js';

export async function openSource(reference: string | ImageReference): Promise<ImageSource> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'oci':
      return LayoutSource.open(ref.path, ref.tag, formatReference(ref));
    case 'oci-archive':
      return openOciArchiveSource(ref.path, ref.tag);
    case 'docker-archive':
      return openDockerArchiveSource(ref.path, ref.name, ref.sourceIndex);
  }
}

export async function openDestination(reference: string | ImageReference): Promise<ImageDestination> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'oci':
      return LayoutDestination.create(ref.path, ref.tag, formatReference(ref));
    case 'oci-archive':
      return createOciArchiveDestination(ref.path, ref.tag);
    case 'docker-archive':
      return createDockerArchiveDestination(ref.path, ref.name);
  }
}
