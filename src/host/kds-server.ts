// A local AMD Key Distribution Service for THIS machine: serves its simulated chip's
// certificates at the URLs AMD's KDS uses (reference/sev-snp-abi.md section 4.3), so that a
// verifier that fetches from KDS (snpguest fetch, go-sev-guest's getter, any KDS client) can be
// pointed at it by changing only the base URL.
//
//   GET /vcek/v1/{product}/cert_chain                -> the ASK then the ARK, PEM
//   GET /vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
//                                                    -> the VCEK for that TCB, DER
//
// Rules, in the order they are checked:
// - GET and HEAD only (405, with Allow).
// - The path is /vcek/v1/{product}/{leaf} (else 404) and the product is this chip's, spelled as
//   AMD does ("Milan", "Genoa"; another product is 404: this KDS has nothing for it).
// - A leaf other than cert_chain (and crl, which is 404: no CRL is served) is a hwid: 128 hex
//   digits (400), either case.
// - The query has blSPL, teeSPL, snpSPL and ucodeSPL, each once, in decimal (leading zeros are
//   fine: snpguest writes %02), boot loader, TEE and SNP 0..127 and microcode 0..255, the ranges
//   go-sev-guest's KDS URL parser accepts, and nothing else (400).
// - The hwid is this chip's CHIP_ID (404: an unknown chip).
// VCEK certificates are dated from the identity's issuedAt (vcekCertificate's default), so one
// identity serves the same bytes for one TCB every time; they are cached per TCB (LRU, bounded).
// One log line per request through the injected logger. Content types: the clients we know of
// ignore them; we send RFC 2585's application/pkix-cert for the DER VCEK and
// application/x-pem-file for the PEM chain (what AMD sends could not be confirmed).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { bytesToHex, TCB_VERSION, type ProductName } from '../arch/index.js';
import type { ChipIdentity } from '../hw/asp/chip-identity.js';
import { kdsCertChainPem } from '../hw/asp/kds-certs.js';
import { vcekCertificate } from '../hw/asp/vcek.js';

/** The SPL query parameters of a Milan/Genoa VCEK URL, the TCB_VERSION field each one sets, and
 * its largest value (go-sev-guest ParseTCBVersionV0). */
export const KDS_SPL_PARAMS = [
  { param: 'blSPL', field: 'bootLoader', max: 127 },
  { param: 'teeSPL', field: 'tee', max: 127 },
  { param: 'snpSPL', field: 'snp', max: 127 },
  { param: 'ucodeSPL', field: 'microcode', max: 255 },
] as const;

/** Content types: DER certificate (RFC 2585) and a PEM bundle. */
export const KDS_CONTENT_TYPE = {
  vcek: 'application/pkix-cert',
  certChain: 'application/x-pem-file',
  text: 'text/plain; charset=utf-8',
} as const;

/** How many derived VCEK certificates are kept; a client walking TCBs cannot grow it further. */
export const KDS_VCEK_CACHE_SIZE = 256;

const HWID_HEX_DIGITS = 128;

/** `/vcek/v1/{product}/cert_chain`. */
export function kdsCertChainPath(product: ProductName): string {
  return `/vcek/v1/${product}/cert_chain`;
}

/** `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`, SPLs in decimal. */
export function kdsVcekPath(product: ProductName, chipId: Uint8Array, tcb: bigint): string {
  const spl = TCB_VERSION.decode(tcb);
  const query = KDS_SPL_PARAMS.map(({ param, field }) => `${param}=${spl[field]}`).join('&');
  return `/vcek/v1/${product}/${bytesToHex(chipId)}?${query}`;
}

export interface KdsServerOptions {
  /** Receives one line per request: method, path, status, size or reason. */
  readonly log?: (line: string) => void;
  /** How many VCEK certificates to keep; KDS_VCEK_CACHE_SIZE by default. */
  readonly vcekCacheSize?: number;
}

/** What the server answers to one request, before it is written to the socket. */
export interface KdsResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** For the log: why an error status, or that a VCEK came from the cache. */
  readonly note?: string;
}

function text(status: number, reason: string, headers: Record<string, string> = {}): KdsResponse {
  return {
    status,
    headers: { 'content-type': KDS_CONTENT_TYPE.text, ...headers },
    body: new TextEncoder().encode(reason + '\n'),
    note: reason,
  };
}

type SplValues = Record<(typeof KDS_SPL_PARAMS)[number]['field'], number>;

/** The TCB of a VCEK query, or the reason it is not one. */
function parseSplQuery(query: string): bigint | string {
  const params = new URLSearchParams(query);
  const allowed = new Set<string>(KDS_SPL_PARAMS.map((p) => p.param));
  for (const key of new Set(params.keys())) {
    if (!allowed.has(key)) {
      return `unexpected query parameter "${key}" (a Milan/Genoa VCEK takes blSPL, teeSPL, snpSPL and ucodeSPL)`;
    }
  }
  const spl: Partial<SplValues> = {};
  for (const { param, field, max } of KDS_SPL_PARAMS) {
    const values = params.getAll(param);
    if (values.length === 0) return `missing query parameter ${param}`;
    if (values.length > 1) return `query parameter ${param} is given ${values.length} times`;
    const v = values[0]!;
    const n = /^[0-9]{1,3}$/.test(v) ? Number(v) : NaN;
    if (!(n <= max)) return `${param} must be a decimal integer 0..${max}, got "${v}"`;
    spl[field] = n;
  }
  return TCB_VERSION.encode(spl);
}

/**
 * The request handler, without the socket: answers `method` and `url` (path and query, as in the
 * HTTP request line) for `identity`. Keeps the VCEK cache; use one per identity.
 */
export class KdsResponder {
  private readonly product: ProductName;
  private readonly chipIdHex: string;
  private readonly certChain: Uint8Array;
  private readonly vcekCache = new Map<bigint, Uint8Array>();

  constructor(
    private readonly identity: ChipIdentity,
    private readonly cacheSize: number = KDS_VCEK_CACHE_SIZE,
  ) {
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new RangeError(`the VCEK cache size must be an integer >= 0, got ${cacheSize}`);
    }
    this.product = identity.product;
    this.chipIdHex = bytesToHex(identity.chipId);
    this.certChain = new TextEncoder().encode(
      kdsCertChainPem(identity.ask.certificate, identity.ark.certificate),
    );
  }

  respond(method: string, url: string): KdsResponse {
    if (method !== 'GET' && method !== 'HEAD') {
      return text(405, `method ${method} is not allowed; use GET`, { allow: 'GET, HEAD' });
    }
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const parts = path.split('/');
    // ['', 'vcek', 'v1', product, leaf]
    if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'vcek' || parts[2] !== 'v1') {
      return text(404, `not found: this KDS serves ${this.served()}`);
    }
    const product = parts[3]!;
    const leaf = parts[4]!;
    if (product !== this.product) {
      return text(404, `unknown product "${product}": this KDS serves ${this.product} only`);
    }
    if (leaf === 'cert_chain') {
      return {
        status: 200,
        headers: { 'content-type': KDS_CONTENT_TYPE.certChain },
        body: this.certChain,
      };
    }
    if (leaf === 'crl') {
      return text(404, 'no CRL is served: nothing of this simulated chip is revoked');
    }
    if (leaf.length !== HWID_HEX_DIGITS || !/^[0-9a-fA-F]+$/.test(leaf)) {
      return text(
        400,
        `the hwid must be ${HWID_HEX_DIGITS} hex digits (the 64-byte CHIP_ID of a report)`,
      );
    }
    const tcb = parseSplQuery(query);
    if (typeof tcb === 'string') return text(400, tcb);
    if (leaf.toLowerCase() !== this.chipIdHex) {
      return text(404, `unknown hwid: this KDS knows only chip ${this.chipIdHex.slice(0, 16)}...`);
    }
    return this.vcek(tcb);
  }

  private vcek(tcb: bigint): KdsResponse {
    const headers = { 'content-type': KDS_CONTENT_TYPE.vcek };
    const cached = this.vcekCache.get(tcb);
    if (cached !== undefined) {
      // Most recently used last, so the oldest entry is the first one evicted.
      this.vcekCache.delete(tcb);
      this.vcekCache.set(tcb, cached);
      return { status: 200, headers, body: cached, note: 'cached' };
    }
    const der = vcekCertificate(this.identity, tcb);
    if (this.cacheSize === 0) return { status: 200, headers, body: der };
    if (this.vcekCache.size >= this.cacheSize) {
      const oldest = this.vcekCache.keys().next().value;
      if (oldest !== undefined) this.vcekCache.delete(oldest);
    }
    this.vcekCache.set(tcb, der);
    return { status: 200, headers, body: der };
  }

  private served(): string {
    return `${kdsCertChainPath(this.product)} and /vcek/v1/${this.product}/<hwid>?blSPL=&teeSPL=&snpSPL=&ucodeSPL=`;
  }
}

function describeRequest(method: string, url: string): string {
  // Printable ASCII only: the URL is the client's, and the log is a terminal.
  const safe = url.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
  return `${method.replace(/[^\x21-\x7e]/g, '?')} ${safe.length > 400 ? safe.slice(0, 400) + '...' : safe}`;
}

/**
 * An HTTP server (not yet listening) that answers AMD KDS requests for `identity`'s chip.
 * Call `listen` on it; `close` it to stop.
 */
export function createKdsServer(identity: ChipIdentity, opts: KdsServerOptions = {}): Server {
  const responder = new KdsResponder(identity, opts.vcekCacheSize);
  const log = opts.log ?? ((): void => {});
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? '';
    const url = req.url ?? '';
    let answer: KdsResponse;
    try {
      answer = responder.respond(method, url);
    } catch (e) {
      // A request that passed every check must not fail; if it does, say so and keep serving.
      answer = text(500, `internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
    res.writeHead(answer.status, {
      ...answer.headers,
      'content-length': String(answer.body.length),
    });
    res.end(method === 'HEAD' ? undefined : answer.body);
    const size = `${answer.body.length} bytes`;
    log(
      `${describeRequest(method, url)} ${answer.status} ` +
        (answer.note === undefined ? size : `${size} (${answer.note})`),
    );
  });
}
