import { connect, type Socket } from 'node:net';

/**
 * HTTP/1.1 written by hand on a socket, for what fetch and node:http will not send: an
 * absolute-form request target (`GET http://host/path HTTP/1.1`), a path exactly as given
 * (`//x`, `/%61`), or a body cut off halfway.
 */

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

function headerLines(headers: Record<string, string>): string {
  return Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
}

function decodeChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

function parseResponse(raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, headEnd === -1 ? raw.length : headEnd).toString('latin1').split('\r\n');
  const status = Number((head[0] ?? '').split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = headEnd === -1 ? Buffer.alloc(0) : raw.subarray(headEnd + 4);
  const text = (headers['transfer-encoding'] === 'chunked' ? decodeChunked(body) : body).toString('utf8');
  return { status, headers, text };
}

/** Sends `GET <target> HTTP/1.1` with these headers (and `Host`, `Connection: close`) and reads the whole answer. */
export function rawGet(port: number, target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${target} HTTP/1.1\r\n${headerLines({ host: `127.0.0.1:${port}`, ...headers, connection: 'close' })}\r\n`);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(parseResponse(Buffer.concat(chunks))));
    socket.on('error', reject);
  });
}

/**
 * Opens a POST that announces `contentLength` bytes of body but sends only `partialBody`, and
 * leaves the socket open: the caller closes it (`destroy()`) to abort the request halfway.
 */
export function partialPost(port: number, path: string, headers: Record<string, string>, contentLength: number, partialBody: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\n${headerLines({ host: `127.0.0.1:${port}`, ...headers, 'content-length': String(contentLength) })}\r\n${partialBody}`,
        () => resolve(socket),
      );
    });
    // The server may reset the connection once the client has gone; nothing to report then.
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}
