/**
 * The status endpoint's listen errors that a setting causes, told as the configuration errors they
 * are (exit 2, one stderr line naming the variable and its value: agent/cli-main.ts), not as a
 * crash (exit 1, a JSON log line): IoT Edge restarts a module that exits either way, and the
 * technician reading `iotedge logs` should be told which setting to change.
 */
import { CONFIG_KEYS, ConfigError } from '../config.js';

/** `err` from listening on `host`:`port` as a ConfigError naming the setting at fault, or null when no setting is (the error is then rethrown as it is). */
export function listenConfigError(err: unknown, host: string, port: number): ConfigError | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const hostSetting = `${CONFIG_KEYS.httpHost.env}=${JSON.stringify(host)}`;
  const portSetting = `${CONFIG_KEYS.httpPort.env}=${JSON.stringify(String(port))}`;
  switch (code) {
    case 'ENOTFOUND':
      return new ConfigError([`${hostSetting}: no such host (the name does not resolve, ${code}); set an address of this gateway, 0.0.0.0 for all of them, or 127.0.0.1`]);
    case 'EADDRNOTAVAIL':
      return new ConfigError([`${hostSetting}: not an address of this gateway (${code}); set one of its addresses, 0.0.0.0 for all of them, or 127.0.0.1`]);
    case 'EADDRINUSE':
      return new ConfigError([`${portSetting}: the port is already in use on ${host} (${code}): another process listens on it (a second agent?); stop it or set another port`]);
    case 'EACCES':
      return new ConfigError([`${portSetting}: not permitted to listen on this port (${code}; ports below 1024 need privileges the agent does not have); set a port of 1024 or above`]);
    default:
      return null;
  }
}
