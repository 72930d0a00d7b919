/** Ports for workers on this machine: never one twice at once, and only ones a test bind says are free. */
import { createServer } from "node:net";

function tryBind(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(undefined));
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      const bound = address !== null && typeof address === "object" ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

export class PortAllocator {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(
    private readonly host: string,
    private readonly from: number,
    private readonly to: number,
  ) {
    this.cursor = from;
  }

  /** A free port: the OS's choice when the range is 0..0, else the next free one in the range. */
  async allocate(): Promise<number> {
    if (this.from === 0 && this.to === 0) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const port = await tryBind(this.host, 0);
        if (port !== undefined && !this.used.has(port)) {
          this.used.add(port);
          return port;
        }
      }
      throw new Error(`no free port on ${this.host}`);
    }
    const size = this.to - this.from + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.cursor;
      this.cursor = this.cursor >= this.to ? this.from : this.cursor + 1;
      if (this.used.has(port)) continue;
      if ((await tryBind(this.host, port)) !== undefined) {
        this.used.add(port);
        return port;
      }
    }
    throw new Error(`no free port in ${this.from}-${this.to} on ${this.host}`);
  }

  release(port: number): void {
    this.used.delete(port);
  }
}
