// Back to the event loop between pieces of long synchronous work, so that other tasks (a data loader's consumer, a
// page's painting and input) get to run: setImmediate in Node; elsewhere (a browser tab or worker) a MessageChannel
// message, which a background tab does not throttle as it does setTimeout (to once a second, or once a minute).

export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((r) => setImmediate(r));
  return new Promise((r) => {
    // the DOM's MessageChannel (this project's lib has Node's, whose ports have no onmessage)
    const c = new MessageChannel() as unknown as { port1: { onmessage: (() => void) | null; close(): void }; port2: { postMessage(v: unknown): void } };
    c.port1.onmessage = () => {
      c.port1.close();
      r();
    };
    c.port2.postMessage(0);
  });
}
