/**
 * What a container SAS URL (PUMPWATCH_BLOB_SAS_URL, for the agent's sync and for the trainer) must
 * be: the URL of one container, with a signature. The Blob SDK takes any URL: given an account SAS
 * URL (`az storage account generate-sas` appended to the account's endpoint) it names the
 * container "undefined", and every request then fails with a bare 400. Checked at start-up instead,
 * never echoing the value (a secret).
 */
import { createRequire } from 'node:module';
import { plainHttpProblem } from './plain-http.js';

/**
 * Blob Storage's rule for a container's name, which the agent (PUMPWATCH_BLOB_CONTAINER) and the
 * trainer (PUMPWATCH_MODELS_CONTAINER) check before any request: Blob Storage answers a bad one
 * with a bare 400 OutOfRangeInput.
 */
export const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const CONTAINER_NAME_RULE = '3-63 lowercase letters, digits and single dashes, starting and ending with a letter or digit';

/** The rule, for the configuration reference and the refusals. */
export const CONTAINER_SAS_URL_RULE =
  'a container SAS URL, its path naming the container: https://ACCOUNT.blob.core.windows.net/CONTAINER?…&sig=… (Azurite: http://HOST:PORT/ACCOUNT/CONTAINER?…), not an account SAS URL';

/**
 * Which path segment the Blob SDK takes as the container on this URL's host: the second on an
 * Azurite-style (path-style) endpoint (an IP address, localhost, or one of Azurite's ports), where
 * the first names the account; else the first. Asked of the SDK itself, with a probe path on the
 * same origin, so the check cannot drift from what the sync does with the URL.
 */
function containerSegments(url: URL): 1 | 2 {
  // Loaded when a SAS URL is set (the sync and the trainer then load it anyway).
  const { ContainerClient } = createRequire(import.meta.url)('@azure/storage-blob') as typeof import('@azure/storage-blob');
  return new ContainerClient(`${url.origin}/first/second`).containerName === 'second' ? 2 : 1;
}

/** Why `value` cannot be the container SAS URL the sync and the trainer use, or null when it can. Never repeats the value. */
export function containerSasUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `not a URL (expected ${CONTAINER_SAS_URL_RULE})`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `not an http(s) URL (expected ${CONTAINER_SAS_URL_RULE})`;
  const insecure = plainHttpProblem(url);
  if (insecure !== null) return insecure;
  // A trailing slash is taken by the SDK (blob names are appended after it).
  const path = url.pathname.replace(/^\//, '').replace(/\/$/, '');
  const segments = path === '' ? [] : path.split('/');
  const wanted = containerSegments(url);
  if (segments.length !== wanted || segments.some((s) => s === '')) {
    const shape = wanted === 2 ? '/ACCOUNT/CONTAINER on this host (an IP address, localhost or an Azurite port: the first segment names the account)' : '/CONTAINER';
    const hint = segments.length < wanted ? ': an account SAS URL? Add the container to its path' : segments.length > wanted ? ': a blob\'s or a folder\'s URL?' : '';
    return `it names no container: its path has ${segments.length} non-empty segment${segments.length === 1 ? '' : 's'} and must be ${shape}${hint} (expected ${CONTAINER_SAS_URL_RULE})`;
  }
  if (!url.searchParams.has('sig')) return `it carries no signature (no sig= in its query): a SAS URL without its token? (expected ${CONTAINER_SAS_URL_RULE})`;
  return null;
}
