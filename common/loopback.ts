/**
 * Whether a URL points at this host: its hostname is `localhost`, an address in 127.0.0.0/8 or `::1`.
 * Parsed, not pattern-matched on the string: `localhost.db.example.com` or `127.0.0.1.nip.io` is not.
 */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Whether a URL points at a local stand-in: this host, or a single-label host (a compose service such as `fly-local`). */
export function isLocalServiceUrl(url: string): boolean {
  if (isLoopbackUrl(url)) return true;
  try {
    const host = new URL(url).hostname;
    return !host.includes('.') && !host.includes(':');
  } catch {
    return false;
  }
}
