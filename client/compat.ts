import {
  createCloudStreamClient,
  type CloudStreamClient,
  type CloudStreamOptions,
  type StreamHandlers,
} from './stream';

/**
 * Drop-in for the original app's `cloudWebSocketClient`: same calls, same metrics. The differences are
 * the point of the migration: `machineId` and `userId` are ignored (the API finds the caller's own
 * machine from the token; nobody can name another user's), and `websocketUrl` is the API's stream URL
 * that the `provision-machine` function now returns, not a machine's address.
 */
export function createCloudWebSocketClient(options: Omit<CloudStreamOptions, 'url'>) {
  let stream: CloudStreamClient | null = null;
  const subscriptions: { event: keyof StreamHandlers; handler: StreamHandlers[keyof StreamHandlers] }[] = [];

  return {
    /** Resolves once the socket is open; rejects if the client stops before that (no machine, refused token). */
    connect(_machineId: string | null | undefined, websocketUrl: string, _userId?: string): Promise<void> {
      stream?.disconnect();
      const s = createCloudStreamClient({ ...options, url: websocketUrl });
      stream = s;
      for (const { event, handler } of subscriptions) s.on(event, handler as never);
      return new Promise<void>((resolve, reject) => {
        const off = s.on('connection', (h) => {
          if (h.state === 'open') {
            off();
            resolve();
          } else if (h.state === 'closed') {
            off();
            reject(new Error(`stream closed: ${h.stopReason ?? 'unknown'}`));
          }
        });
        s.connect();
      });
    },
    disconnect(): void {
      stream?.disconnect();
    },
    getConnectionHealth() {
      return stream?.getConnectionHealth() ?? null;
    },
    send(data: string | object): boolean {
      return stream?.send(data) ?? false;
    },
    /** Handlers registered here survive `connect()` to a new URL. */
    on<E extends keyof StreamHandlers>(event: E, handler: StreamHandlers[E]): () => void {
      const entry = { event, handler };
      subscriptions.push(entry);
      const off = stream?.on(event, handler);
      return () => {
        subscriptions.splice(subscriptions.indexOf(entry), 1);
        off?.();
      };
    },
  };
}
export type CloudWebSocketClient = ReturnType<typeof createCloudWebSocketClient>;
