// Verifies the signed headers caddy-cinetpay sends to a shop: RFC 9421 HTTP Message Signatures
// with hmac-sha256 under the label "cinetpay" (the project's README, "2. Deliveries", "3. The
// return page" and "Verifying the signature in your language"). No dependency; the rules are those
// of the module's Go verifier, httpsig.Verifier, and the shared test vectors keep them equal.
//
//   const { verifyRequest, VerificationError, TAG_NOTIFY } = require('@caddy-cinetpay/verifier');
//   const r = verifyRequest(req, { shop1: key }, TAG_NOTIFY); // throws VerificationError: answer 401
//   // compare r.orderId, r.amount, r.currency with your order; apply r.eventId once
'use strict';

const crypto = require('node:crypto');

const VERSION = '0.1.0';
const LABEL = 'cinetpay';
const ALGORITHM = 'hmac-sha256';
const TAG_NOTIFY = 'cinetpay-notify'; // deliveries
const TAG_RETURN = 'cinetpay-return'; // return pages
const SKEW = 60; // seconds of clock skew allowed on created and expires
const REQUIRED = ['@method', 'cinetpay-transaction-id', 'cinetpay-order-id', 'cinetpay-status',
  'cinetpay-amount', 'cinetpay-currency', 'cinetpay-environment'];

/**
 * The message is refused. `kind` is `missing` (no "cinetpay" signature), `malformed` (the headers
 * do not parse, or use what the scheme does not allow) or `invalid` (a rule is broken: key id, tag,
 * coverage, time, environment, MAC). The message never holds a key.
 */
class VerificationError extends Error {
  /** @param {'missing'|'malformed'|'invalid'} kind @param {string} message */
  constructor(kind, message) {
    super(message);
    this.name = 'VerificationError';
    this.kind = kind;
  }
}

const malformed = (m) => new VerificationError('malformed', m);
const invalid = (m) => new VerificationError('invalid', m);

// ---- RFC 8941 (Structured Field Values): what Signature-Input and Signature use. Items are
// { type, value }; parameters are Maps (insertion-ordered); a dictionary member is
// { list?: [{ item, params }], item?, params }.

function parseDictionary(s) {
  let i = 0;
  const fail = (what) => { throw malformed(`malformed structured field: ${what} at offset ${i}`); };
  const skip = (chars) => { while (i < s.length && chars.includes(s[i])) i++; };
  const match = (re) => { re.lastIndex = i; const m = re.exec(s); return m; };
  const key = () => {
    const m = match(/[a-z*][a-z0-9_\-.*]*/y);
    if (!m) fail('bad key');
    i += m[0].length;
    return m[0];
  };
  const bareItem = () => {
    const c = s[i] || '';
    let m;
    if (c === '"') {
      let v = '';
      for (i++; i < s.length; i++) {
        if (s[i] === '"') { i++; return { type: 'string', value: v }; }
        if (s[i] === '\\') {
          i++;
          if (s[i] !== '"' && s[i] !== '\\') fail('bad escape');
        } else if (s[i] < ' ' || s[i] > '~') fail('bad string character');
        v += s[i];
      }
      return fail('unterminated string');
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      if (!(m = match(/-?([0-9]+)(?:(\.)([0-9]*))?/y))) fail('bad number');
      i += m[0].length;
      if (m[2] === undefined) {
        if (m[1].length > 15) fail('bad number');
        return { type: 'integer', value: Number(m[0]) };
      }
      if (m[1].length > 12 || m[3].length < 1 || m[3].length > 3) fail('bad number');
      return { type: 'decimal', value: m[0] };
    }
    if (c === ':') {
      const end = s.indexOf(':', i + 1);
      const b64 = end < 0 ? '' : s.slice(i + 1, end);
      if (end < 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) fail('bad byte sequence');
      i = end + 1;
      return { type: 'bytes', value: Buffer.from(b64, 'base64') };
    }
    if (c === '?' && (s[i + 1] === '0' || s[i + 1] === '1')) {
      i += 2;
      return { type: 'boolean', value: s[i - 1] === '1' };
    }
    if ((m = match(/[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*/y))) {
      i += m[0].length;
      return { type: 'token', value: m[0] };
    }
    return fail('bad item');
  };
  const params = () => {
    const p = new Map(); // a repeated key keeps its first position and its last value
    while (s[i] === ';') {
      i++;
      skip(' ');
      const k = key();
      let v = { type: 'boolean', value: true };
      if (s[i] === '=') { i++; v = bareItem(); }
      p.set(k, v);
    }
    return p;
  };
  const out = new Map();
  skip(' ');
  while (i < s.length) {
    const k = key();
    const member = {};
    if (s[i] === '=' && s[i + 1] === '(') {
      i += 2;
      member.list = [];
      for (;;) {
        skip(' ');
        if (s[i] === ')') { i++; break; }
        if (i >= s.length) fail('unterminated inner list');
        member.list.push({ item: bareItem(), params: params() });
        if (s[i] !== ' ' && s[i] !== ')') fail("expected ' ' or ')'");
      }
    } else if (s[i] === '=') {
      i++;
      member.item = bareItem();
    } else {
      member.item = { type: 'boolean', value: true };
    }
    member.params = params();
    out.set(k, member); // a later duplicate replaces an earlier one
    skip(' \t');
    if (i >= s.length) break;
    if (s[i] !== ',') fail("expected ','");
    i++;
    skip(' \t');
    if (i >= s.length) fail("trailing ','");
  }
  return out;
}

function serializeItem({ type, value }) {
  switch (type) {
    case 'string': return `"${value.replace(/[\\"]/g, '\\$&')}"`;
    case 'integer': return String(value);
    case 'bytes': return `:${value.toString('base64')}:`;
    case 'boolean': return value ? '?1' : '?0';
    default: return value; // token, decimal: as written
  }
}

function serializeParams(params) {
  let out = '';
  for (const [k, v] of params) out += v.type === 'boolean' && v.value ? `;${k}` : `;${k}=${serializeItem(v)}`;
  return out;
}

// ---- headers

/**
 * @typedef {Record<string, string|string[]|undefined>|Map<string, string|string[]>|Iterable<[string, string]>} Headers
 * A plain object (req.headersDistinct, req.headers), a Map, a fetch Headers or [name, value] pairs.
 */

/** Lower-case name → lines. @param {Headers} headers @returns {Map<string, string[]>} */
function headerLines(headers) {
  if (headers === null || typeof headers !== 'object') throw malformed('headers are not an object');
  const pairs = typeof headers[Symbol.iterator] === 'function' ? headers : Object.entries(headers);
  const out = new Map();
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw malformed('headers: expected [name, value] pairs');
    const [name, value] = pair;
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof name !== 'string' || typeof v !== 'string') throw malformed(`header ${String(name)} is not text`);
      const lower = name.toLowerCase();
      if (!out.has(lower)) out.set(lower, []);
      out.get(lower).push(v);
    }
  }
  return out;
}

/** A header field's value: its lines trimmed and joined with ", " (RFC 9421 §2.1). */
function fieldValue(h, name) {
  const lines = h.get(name);
  if (lines === undefined) throw invalid(`covered header ${name} is missing`);
  const value = lines.map((l) => l.replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');
  if (!/^[\x20-\x7e]*$/.test(value)) throw malformed(`header ${name} is not printable ASCII`);
  return value;
}

/**
 * @typedef {object} Result What a verified message says. Values are as sent: the module
 * percent-encodes any byte that is not printable ASCII, and "%" (decodeURIComponent to display).
 * @property {string} transactionId
 * @property {string} orderId
 * @property {string} status
 * @property {string} amount
 * @property {string} currency
 * @property {string} paymentMethod
 * @property {string} operatorId
 * @property {string} paymentDate
 * @property {string} environment
 * @property {string} eventId deliveries: apply each event id once
 * @property {string} keyId
 * @property {string} nonce
 * @property {number} created Unix seconds
 * @property {number} expires Unix seconds
 */

/**
 * @typedef {object} Options
 * @property {boolean} [acceptSandbox] accept Cinetpay-Environment "sandbox" (development only)
 * @property {number|Date} [now] Unix seconds or a Date; default the current time
 */

/**
 * Checks the "cinetpay" signature of a request and returns what it verifies; throws
 * VerificationError with the reason.
 *
 * Reads the "cinetpay" label only; picks the key by keyid; uses HMAC-SHA256 whatever the message
 * says (an alg other than hmac-sha256 is refused); requires the tag, created and expires (60 s of
 * skew), and coverage of @method, the transaction id, order id, status, amount, currency,
 * environment and, for deliveries, the event id; refuses any Cinetpay-* (or Cinetpay_*) header
 * left uncovered. The only derived component is @method.
 *
 * @param {string} method the request's method
 * @param {Headers} headers the request's headers
 * @param {Record<string, string|Uint8Array>|Map<string, string|Uint8Array>} keys key id → key (several let you rotate)
 * @param {string} tag TAG_NOTIFY for deliveries, TAG_RETURN for return pages
 * @param {Options} [options]
 * @returns {Result}
 */
function verify(method, headers, keys, tag, { acceptSandbox = false, now } = {}) {
  let t = now === undefined ? Date.now() / 1000 : now;
  if (t instanceof Date) t = t.getTime() / 1000;
  const h = headerLines(headers);
  if (!h.has('signature-input') || !h.has('signature')) {
    throw new VerificationError('missing', 'no Signature-Input or Signature header');
  }
  const input = parseDictionary(h.get('signature-input').join(', ')).get(LABEL);
  const sig = parseDictionary(h.get('signature').join(', ')).get(LABEL);
  if (!input || !sig) throw new VerificationError('missing', `no "${LABEL}" label`);
  if (!input.list) throw malformed(`Signature-Input ${LABEL} is not an inner list`);
  if (sig.list || sig.item.type !== 'bytes') throw malformed(`Signature ${LABEL} is not a byte sequence`);

  const types = { created: 'integer', expires: 'integer', keyid: 'string', alg: 'string', nonce: 'string', tag: 'string' };
  const p = {};
  for (const [k, v] of input.params) {
    if (!Object.hasOwn(types, k)) continue;
    if (v.type !== types[k]) throw malformed(`${k} is not of type ${types[k]}`);
    // the algorithm is never taken from the message: HMAC-SHA256, any other alg refused
    if (k === 'alg' && v.value !== ALGORITHM) throw invalid(`alg ${JSON.stringify(v.value)} is not ${ALGORITHM}`);
    p[k] = v.value;
  }
  if (!tag || p.tag !== tag) throw invalid(`tag ${JSON.stringify(p.tag || '')}, want ${JSON.stringify(tag || '')}`);
  const keyId = p.keyid || '';
  let key = !keyId ? undefined : keys instanceof Map ? keys.get(keyId) : Object.hasOwn(keys, keyId) ? keys[keyId] : undefined;
  if (typeof key === 'string') key = Buffer.from(key, 'utf8');
  if (!key || key.length === 0) throw invalid(`unknown keyid ${JSON.stringify(keyId)}`);
  if (p.created === undefined || p.expires === undefined) throw invalid('created and expires are required');
  if (p.created > t + SKEW) throw invalid('created in the future');
  if (t >= p.expires + SKEW) throw invalid('expired');

  const covered = new Set(input.list.filter(({ item }) => item.type === 'string').map(({ item }) => item.value));
  for (const c of tag === TAG_NOTIFY ? [...REQUIRED, 'cinetpay-event-id'] : REQUIRED) {
    if (!covered.has(c)) throw invalid(`${c} is not covered`);
  }
  for (const name of [...h.keys()].sort()) {
    if (name.replace(/_/g, '-').startsWith('cinetpay-') && !covered.has(name)) throw invalid(`header ${name} is not covered`);
  }

  // the signature base of RFC 9421 §2.5, over the covered components as listed
  let base = '';
  const seen = new Set();
  for (const { item, params } of input.list) {
    if (item.type !== 'string') throw malformed('component identifier is not a string');
    if (params.size > 0) throw malformed('component parameters are not supported');
    const name = item.value;
    if (!name || name !== name.toLowerCase() || name === '@signature-params' || seen.has(name)) {
      throw malformed(`bad or repeated component ${JSON.stringify(name)}`);
    }
    seen.add(name);
    let value;
    if (name === '@method') value = String(method);
    else if (name.startsWith('@')) throw malformed(`derived component ${name} is not supported`);
    else value = fieldValue(h, name);
    base += `${serializeItem(item)}: ${value}\n`;
  }
  const list = input.list.map(({ item, params }) => serializeItem(item) + serializeParams(params)).join(' ');
  base += `"@signature-params": (${list})${serializeParams(input.params)}`;
  const mac = crypto.createHmac('sha256', key).update(base, 'utf8').digest();
  if (mac.length !== sig.item.value.length || !crypto.timingSafeEqual(mac, sig.item.value)) {
    throw invalid('signature does not match');
  }

  const get = (name) => (h.has(name) ? fieldValue(h, name) : '');
  /** @type {Result} */
  const r = {
    transactionId: get('cinetpay-transaction-id'), orderId: get('cinetpay-order-id'), status: get('cinetpay-status'),
    amount: get('cinetpay-amount'), currency: get('cinetpay-currency'), paymentMethod: get('cinetpay-payment-method'),
    operatorId: get('cinetpay-operator-id'), paymentDate: get('cinetpay-payment-date'),
    environment: get('cinetpay-environment'), eventId: get('cinetpay-event-id'), keyId, nonce: p.nonce || '',
    created: p.created, expires: p.expires,
  };
  if (r.environment === 'sandbox') {
    if (!acceptSandbox) throw invalid('sandbox result refused');
  } else if (r.environment !== 'live') {
    throw invalid(`environment ${JSON.stringify(r.environment)}`);
  }
  if (tag === TAG_NOTIFY && !r.eventId) throw invalid('empty event id');
  return r;
}

/**
 * verify with the method and headers of a node:http request (its rawHeaders: every line, as
 * received).
 * @param {import('node:http').IncomingMessage} req
 * @param {Record<string, string|Uint8Array>|Map<string, string|Uint8Array>} keys
 * @param {string} tag
 * @param {Options} [options]
 * @returns {Result}
 */
function verifyRequest(req, keys, tag, options) {
  const pairs = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
  return verify(req.method, pairs, keys, tag, options);
}

module.exports = { verify, verifyRequest, VerificationError, TAG_NOTIFY, TAG_RETURN, SKEW, VERSION };
