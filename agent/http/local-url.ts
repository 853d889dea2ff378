/**
 * The URL a program on the gateway itself reaches the status endpoint at: a wildcard address
 * (0.0.0.0, ::) by loopback, an IPv6 address in brackets, https when it serves TLS.
 */
export function localUrl(host: string, port: number, tls: boolean): string {
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `${tls ? 'https' : 'http'}://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}/`;
}
