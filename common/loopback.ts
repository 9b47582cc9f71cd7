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
