/**
 * When a blob target may be plain http:// (PUMPWATCH_BLOB_SAS_URL, PUMPWATCH_BLOB_CONNECTION_STRING,
 * for the agent and the trainer alike). Over http the SAS signature (or the account key's signed
 * requests) and every reading cross the network in clear. Azure's public endpoints take https, so
 * http to them is only ever a mistake that sends both over the internet; it was taken silently.
 * Plain http stays allowed to any other host: Azurite on the gateway or the LAN, and the "Azure Blob
 * Storage on IoT Edge" module, which serves plain http on the edge network
 * (http://azureblobstorage:11002), where the traffic never leaves the site.
 */

/** The blob endpoint suffixes of Azure's public clouds (global, China, US Government, Germany). */
const PUBLIC_CLOUD_SUFFIXES = ['core.windows.net', 'core.chinacloudapi.cn', 'core.usgovcloudapi.net', 'core.cloudapi.de'] as const;

const LOCAL_HOSTS = 'a host on the gateway or its network (Azurite, the Azure Blob Storage on IoT Edge module)';

/** The rule, for the configuration reference. */
export const PLAIN_HTTP_RULE = `plain http:// only to ${LOCAL_HOSTS}, never to Azure's public endpoints (host names ending in ${PUBLIC_CLOUD_SUFFIXES.join(', ')}): https there`;

/** Why `url` may not be a blob target for its plain http, or null when it may. Names the cloud suffix, never the URL (its host names the account). */
export function plainHttpProblem(url: URL): string | null {
  if (url.protocol !== 'http:') return null;
  // A fully qualified name's trailing dot reaches the same host.
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const suffix = PUBLIC_CLOUD_SUFFIXES.find((s) => host === s || host.endsWith(`.${s}`));
  if (suffix === undefined) return null;
  return `plain http:// to Azure's public endpoint (a host name ending in ${suffix}) would send the signature or key and every reading over the internet in clear: use https:// (plain http:// is for ${LOCAL_HOSTS} only)`;
}
