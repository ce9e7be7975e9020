// A minimal shop behind Caddy and caddy-cinetpay, with Node's standard library only.
//
//   POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
//                            the payment; this shop never talks to CinetPay)
//   POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
//   GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
//   GET  /orders/<id>        the order as the shop holds it (JSON)
//
// Environment: SHOP_PORT (9000), SHOP_DATA (./data/shop-node), SIGNING_KEYS ("id:key,id2:key2"),
// ACCEPT_SANDBOX ("1" accepts results of the CinetPay sandbox).
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const PORT = Number(process.env.SHOP_PORT || 9000);
const DATA = process.env.SHOP_DATA || 'data/shop-node';
const STORE = path.join(DATA, 'orders.json');
const ACCEPT_SANDBOX = process.env.ACCEPT_SANDBOX === '1';
const KEYS = parseKeys(process.env.SIGNING_KEYS || '');
const SKEW = 60; // seconds of clock skew allowed on created and expires

const PRODUCTS = {
  wax: { name: 'Tissu wax — édition spéciale', amount: 5000 },
  attieke: { name: 'Attiéké, 1 kg', amount: 1500 },
};

// SIGNING_KEYS is "id1:key1,id2:key2": several keys let the shop rotate (add the new key,
// switch Caddy's signing_key to it, then remove the old one).
function parseKeys(s) {
  const keys = new Map();
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0 || i === part.length - 1) throw new Error('SIGNING_KEYS: expected id:key[,id:key]');
    keys.set(part.slice(0, i), Buffer.from(part.slice(i + 1), 'utf8'));
  }
  if (keys.size === 0) throw new Error('SIGNING_KEYS is required (id:key[,id:key])');
  return keys;
}

// ---- Signature verification (README, "2. Deliveries": RFC 9421, hmac-sha256, label "cinetpay") ----------------

// parseDictionary parses an RFC 8941 dictionary (as Signature-Input and Signature are) into a
// Map of key → { list?: [{item, params}], item?, params }. Items are { type, value }.
function parseDictionary(s) {
  let i = 0;
  const fail = (what) => { throw new Error(`malformed structured field: ${what} at ${i}`); };
  const skip = (chars) => { while (i < s.length && chars.includes(s[i])) i++; };
  const key = () => {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(s.slice(i));
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
      fail('unterminated string');
    }
    if ((m = /^-?(\d+)(?:(\.)(\d*))?/.exec(s.slice(i))) && (c === '-' || (c >= '0' && c <= '9'))) {
      i += m[0].length;
      if (m[2] === undefined) {
        if (m[1].length > 15) fail('integer too long');
        return { type: 'integer', value: Number(m[0]) };
      }
      if (m[1].length > 12 || m[3].length < 1 || m[3].length > 3) fail('bad decimal');
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
    if ((m = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*/.exec(s.slice(i)))) {
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
    out.set(k, member);
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

// verify checks the "cinetpay" signature of a request and returns its verified Cinetpay-* values.
// headers is req.headersDistinct (lower-case name → array of lines). Throws with the reason.
function verify(method, headers, tag, now = Math.floor(Date.now() / 1000)) {
  const field = (name) => (headers[name] || []).join(', ');
  if (!headers['signature-input'] || !headers.signature) throw new Error('no Signature-Input or Signature');
  const input = parseDictionary(field('signature-input')).get('cinetpay');
  const sig = parseDictionary(field('signature')).get('cinetpay');
  if (!input || !sig) throw new Error('no "cinetpay" signature');
  if (!input.list) throw new Error('Signature-Input cinetpay is not an inner list');
  if (sig.list || sig.item.type !== 'bytes') throw new Error('Signature cinetpay is not a byte sequence');

  const want = { created: 'integer', expires: 'integer', keyid: 'string', alg: 'string', nonce: 'string', tag: 'string' };
  const p = {};
  for (const [k, v] of input.params) {
    if (!Object.hasOwn(want, k)) continue;
    if (v.type !== want[k]) throw new Error(`${k} is not a ${want[k]}`);
    p[k] = v.value;
  }
  // the algorithm is never taken from the message: it is HMAC-SHA256, and any other alg is refused
  if (p.alg !== undefined && p.alg !== 'hmac-sha256') throw new Error(`alg ${p.alg} refused`);
  if (p.tag !== tag) throw new Error(`tag ${p.tag}, want ${tag}`);
  const key = KEYS.get(p.keyid);
  if (!key) throw new Error(`unknown keyid ${p.keyid}`);
  if (p.created === undefined || p.expires === undefined) throw new Error('created and expires are required');
  if (p.created > now + SKEW) throw new Error('created in the future');
  if (now >= p.expires + SKEW) throw new Error('expired');

  // the signature base of RFC 9421 §2.5, over the covered components as listed
  const covered = new Map(); // component → value
  let base = '';
  for (const { item, params } of input.list) {
    const name = item.value;
    if (item.type !== 'string' || params.size > 0 || !name || name !== name.toLowerCase() ||
        name === '@signature-params' || covered.has(name)) throw new Error(`bad component ${name}`);
    let value;
    if (name === '@method') value = method;
    else if (name.startsWith('@')) throw new Error(`component ${name} not supported`);
    else if (!Object.hasOwn(headers, name)) throw new Error(`covered header ${name} missing`);
    else value = headers[name].map((l) => l.replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');
    if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`header ${name} is not printable ASCII`);
    covered.set(name, value);
    base += `${serializeItem(item)}: ${value}\n`;
  }
  const required = ['@method', 'cinetpay-transaction-id', 'cinetpay-order-id', 'cinetpay-status',
    'cinetpay-amount', 'cinetpay-currency', 'cinetpay-environment'];
  if (tag === 'cinetpay-notify') required.push('cinetpay-event-id');
  for (const c of required) if (!covered.has(c)) throw new Error(`${c} is not covered`);
  for (const name of Object.keys(headers)) {
    if (name.replace(/_/g, '-').startsWith('cinetpay-') && !covered.has(name)) throw new Error(`header ${name} is not covered`);
  }
  const list = input.list.map(({ item, params }) => serializeItem(item) + serializeParams(params)).join(' ');
  base += `"@signature-params": (${list})${serializeParams(input.params)}`;

  const mac = crypto.createHmac('sha256', key).update(base, 'latin1').digest();
  if (mac.length !== sig.item.value.length || !crypto.timingSafeEqual(mac, sig.item.value)) {
    throw new Error('signature does not match');
  }
  const v = (name) => covered.get(name) || '';
  const res = {
    transactionId: v('cinetpay-transaction-id'), orderId: v('cinetpay-order-id'), status: v('cinetpay-status'),
    amount: v('cinetpay-amount'), currency: v('cinetpay-currency'), environment: v('cinetpay-environment'),
    eventId: v('cinetpay-event-id'), keyid: p.keyid,
  };
  if (res.environment !== 'live' && !(res.environment === 'sandbox' && ACCEPT_SANDBOX)) {
    throw new Error(`environment ${res.environment} refused`);
  }
  if (tag === 'cinetpay-notify' && !res.eventId) throw new Error('empty event id');
  return res;
}

// ---- Store: one JSON file, replaced atomically ---------------------------------------------------

function load() {
  try {
    return JSON.parse(fs.readFileSync(STORE, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return { orders: {}, events: {} };
    throw e;
  }
}

// update loads, changes and saves the store with synchronous calls only: Node runs them without
// interleaving another request. The new version goes to a temporary file, written in full and
// synced, renamed over the store, then the directory is synced so the rename survives a power
// loss. Any failure throws (the caller answers 500) and leaves the store as it was.
function update(change) {
  const db = load();
  const result = change(db);
  writeAtomic(STORE, JSON.stringify(db, null, 2));
  return result;
}

function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      fs.writeFileSync(fd, data); // writes everything or throws (ENOSPC), unlike one writeSync
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  if (process.platform !== 'win32') { // Windows cannot open a directory to sync it
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  }
}

// applyResult applies a verified delivery to its order, together with its event id.
function applyResult(db, r) {
  if (db.events[r.eventId]) return 'already applied';
  const order = db.orders[r.orderId];
  // Acknowledged (2xx) but not recorded: once the order is restored, a replay of this event
  // through Caddy's admin API is applied instead of answered "already applied".
  if (!order) return 'unknown order: not applied';
  const now = new Date().toISOString();
  const flag = (reason) => order.flags.push({ event_id: r.eventId, transaction_id: r.transactionId, status: r.status, reason, at: now });
  let note;
  if (r.amount !== String(order.amount) || r.currency !== order.currency) {
    note = `${r.amount} ${r.currency} differs from the order's ${order.amount} ${order.currency}: recorded for review, not applied`;
    flag(note);
  } else if (r.status === 'ACCEPTED' && order.status === 'paid' && order.transaction_id && order.transaction_id !== r.transactionId) {
    // paid by another transaction: the order keeps its payment, the merchant refunds this one
    note = `paid twice: refund ${r.transactionId}`;
    flag(note);
  } else if (r.status === 'ACCEPTED') {
    order.status = 'paid';
    order.transaction_id = r.transactionId;
    note = 'order paid';
  } else if (r.status === 'REFUSED' || r.status === 'EXPIRED') {
    if (order.status !== 'paid') order.status = 'payment_failed'; // a later ACCEPTED still wins
    note = `payment ${r.status.toLowerCase()}`;
  } else if (r.status === 'MISMATCH' || r.status === 'DUPLICATE') {
    note = r.status === 'DUPLICATE' ? 'paid twice: refund this transaction' : 'paid another amount: review and refund';
    flag(note);
  } else {
    note = `status ${r.status} ignored`;
  }
  order.events.push(r.eventId);
  db.events[r.eventId] = { order_id: r.orderId, transaction_id: r.transactionId, status: r.status, note, at: now };
  return note;
}

// ---- HTTP ------------------------------------------------------------------------------------------

// pct percent-encodes text for a Cinetpay-* header (RFC 3986 unreserved characters stay):
// setHeader cannot send non-Latin-1 text, and the module decodes it.
const pct = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function readForm(req, done) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { if ((body += chunk).length > 65536) req.destroy(); });
  req.on('end', () => done(new URLSearchParams(body)));
}

function checkout(res, form) {
  const product = form.get('product') || 'wax';
  const p = PRODUCTS[product];
  if (!p) return send(res, 400, 'unknown product\n');
  const id = `ord_${crypto.randomBytes(8).toString('hex')}`;
  update((db) => {
    db.orders[id] = { id, product, description: p.name, amount: p.amount, currency: 'XOF', status: 'awaiting_payment',
      transaction_id: null, events: [], flags: [], created_at: new Date().toISOString() };
  });
  // Caddy replaces this answer with a 303 to CinetPay's payment page (README, "1. Checkout").
  res.setHeader('Cinetpay-Amount', String(p.amount));
  res.setHeader('Cinetpay-Order-Id', id);
  res.setHeader('Cinetpay-Currency', 'XOF');
  res.setHeader('Cinetpay-Description', pct(p.name));
  res.setHeader('Cinetpay-Customer-Name', pct('Aya'));
  res.setHeader('Cinetpay-Customer-Surname', pct('Kouadio'));
  res.setHeader('Cinetpay-Customer-Email', 'aya.kouadio@example.test');
  res.setHeader('Cinetpay-Customer-Phone-Number', '+2250700000000');
  res.setHeader('Cinetpay-Customer-Address', pct('Rue des Jardins'));
  res.setHeader('Cinetpay-Customer-City', pct('Abidjan'));
  res.setHeader('Cinetpay-Customer-Country', 'CI');
  res.setHeader('Cinetpay-Customer-Zip-Code', '00225');
  res.setHeader('Cinetpay-Metadata', pct(`order=${id}`));
  return send(res, 200, `order ${id} created\n`);
}

function webhook(req, res) {
  let r;
  try {
    r = verify(req.method, req.headersDistinct, 'cinetpay-notify');
  } catch (e) {
    console.error(`webhook refused: ${e.message}`);
    return send(res, 401, `bad signature: ${e.message}\n`);
  }
  const note = update((db) => applyResult(db, r));
  console.log(`webhook ${r.eventId} ${r.orderId} ${r.status}: ${note}`);
  return send(res, 200, `${note}\n`); // 2xx: the module stops retrying this event
}

function returnPage(req, res) {
  let html;
  try {
    const r = verify(req.method, req.headersDistinct, 'cinetpay-return');
    const order = load().orders[r.orderId];
    html = `<h1>Order ${esc(r.orderId)}</h1>
<p>Payment: <strong id="payment-status">${esc(r.status)}</strong> (${esc(r.amount)} ${esc(r.currency)})</p>
<p>Order: <strong id="order-status">${order ? esc(order.status) : 'unknown'}</strong></p>`;
  } catch (e) {
    html = `<h1>Payment</h1><p>The payment status could not be verified (${esc(e.message)}).
Your order page shows the result once it arrives.</p>`;
  }
  return send(res, 200, `<!doctype html><meta charset="utf-8"><title>Payment</title>\n${html}\n`, 'text/html; charset=utf-8');
}

const HOME = `<!doctype html><meta charset="utf-8"><title>Shop</title>
<h1>Shop (Node)</h1>
<form method="post" action="/checkout">
<select name="product">${Object.entries(PRODUCTS).map(([k, p]) => `<option value="${k}">${esc(p.name)} — ${p.amount} XOF</option>`).join('')}</select>
<button>Pay with CinetPay</button>
</form>
`;

fs.mkdirSync(DATA, { recursive: true });
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://shop.invalid');
  const order = /^\/orders\/([A-Za-z0-9._-]{1,64})$/.exec(url.pathname);
  try {
    if (url.pathname === '/' && req.method === 'GET') return send(res, 200, HOME, 'text/html; charset=utf-8');
    if (url.pathname === '/checkout' && req.method === 'POST') {
      // the callback runs after this try: it catches its own errors (a store error must answer
      // 500, not end the process)
      return readForm(req, (form) => {
        try {
          checkout(res, form);
        } catch (e) {
          console.error(e);
          send(res, 500, 'internal error\n');
        }
      });
    }
    if (url.pathname === '/cinetpay/webhook' && req.method === 'POST') return webhook(req, res);
    if (url.pathname === '/cinetpay/return' && req.method === 'GET') return returnPage(req, res);
    if (order && req.method === 'GET') {
      const o = load().orders[order[1]];
      return o ? send(res, 200, `${JSON.stringify(o, null, 2)}\n`, 'application/json') : send(res, 404, 'no such order\n');
    }
    return send(res, 404, 'not found\n');
  } catch (e) {
    console.error(e);
    return send(res, 500, 'internal error\n');
  }
}).listen(PORT, '127.0.0.1', () => console.log(`shop (node) on http://127.0.0.1:${PORT}`));
