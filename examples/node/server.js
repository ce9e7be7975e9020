// A minimal shop behind Caddy and caddy-cinetpay, with Node's standard library only.
//
//   POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
//                            the payment; this shop never talks to CinetPay)
//   POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
//   POST /cinetpay/standard-webhook  the same, delivered in the Standard Webhooks format
//                            (deliver_format standard-webhooks), verified by the npm package
//   GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
//   GET  /orders/<id>        the order as the shop holds it (JSON)
//
// Environment: SHOP_PORT (9000), SHOP_DATA (./data/shop-node), SIGNING_KEYS ("id:key,id2:key2"),
// ACCEPT_SANDBOX ("1" accepts results of the CinetPay sandbox), STANDARD_WEBHOOKS_SECRET ("whsec_…",
// for /cinetpay/standard-webhook). Run `npm ci` here first (package.json: standardwebhooks).
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Webhook } = require('standardwebhooks'); // the official Standard Webhooks library

const PORT = Number(process.env.SHOP_PORT || 9000);
const DATA = process.env.SHOP_DATA || 'data/shop-node';
const STORE = path.join(DATA, 'orders.json');
const ACCEPT_SANDBOX = process.env.ACCEPT_SANDBOX === '1';
const KEYS = parseKeys(process.env.SIGNING_KEYS || '');
const SW = process.env.STANDARD_WEBHOOKS_SECRET ? new Webhook(process.env.STANDARD_WEBHOOKS_SECRET) : null;

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

// ---- Signature verification (README, "2. Deliveries"): the verifier of verifiers/node -------------

const verifier = require('../../verifiers/node');

// verify checks the "cinetpay" signature of a request (headers: req.headersDistinct) with the keys
// of SIGNING_KEYS and returns its verified values (orderId, status, amount, currency,
// transactionId, eventId, …). Throws a VerificationError with the reason.
function verify(method, headers, tag) {
  return verifier.verify(method, headers, KEYS, tag, { acceptSandbox: ACCEPT_SANDBOX });
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

// standardWebhook receives deliveries in the Standard Webhooks format (README.md, "Standard
// Webhooks"): the library checks webhook-signature over the raw body and webhook-timestamp (5
// minutes either way); the result is then refused, compared and applied once like the webhook's.
function standardWebhook(req, res) {
  if (!SW) return send(res, 503, 'STANDARD_WEBHOOKS_SECRET is not set: Standard Webhooks deliveries cannot be verified\n');
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { chunks.push(c); if ((size += c.length) > 65536) req.destroy(); });
  req.on('end', () => {
    let r;
    try {
      const { type, data: d = {} } = SW.verify(Buffer.concat(chunks), req.headers) || {};
      if (!d.event_id || type !== `payment.${String(d.status).toLowerCase()}`) throw new Error('not a payment result');
      if (d.environment !== 'live' && !(d.environment === 'sandbox' && ACCEPT_SANDBOX)) throw new Error(`environment ${d.environment} refused`);
      r = { transactionId: d.transaction_id, orderId: d.order_id, status: d.status, amount: d.amount,
        currency: d.currency, environment: d.environment, eventId: d.event_id };
    } catch (e) {
      console.error(`standard webhook refused: ${e.message}`);
      return send(res, 401, `refused: ${e.message}\n`);
    }
    try {
      const note = update((db) => applyResult(db, r));
      console.log(`standard webhook ${r.eventId} ${r.orderId} ${r.status}: ${note}`);
      return send(res, 200, `${note}\n`); // 2xx: the module stops retrying this event
    } catch (e) {
      console.error(e);
      return send(res, 500, 'internal error\n'); // the module retries
    }
  });
}

// The pages customers see, in French, readable on a phone; the codes stay in data-status.
const page = (title, body) => `<!doctype html><html lang="fr"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{margin:0 auto;max-width:34rem;padding:1rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}h1,p{overflow-wrap:anywhere}select,button{font:inherit;max-width:100%}</style>
${body}
`;
const PAYMENT_WORDS = { ACCEPTED: 'accepté', REFUSED: 'refusé', PENDING: 'en attente de confirmation', EXPIRED: 'expiré',
  MISMATCH: 'montant différent de la commande (à vérifier)', DUPLICATE: 'en double (il sera remboursé)' };
const ORDER_WORDS = { awaiting_payment: 'en attente de paiement', paid: 'payée', payment_failed: 'paiement non abouti' };

function returnPage(req, res) {
  let html;
  try {
    const r = verify(req.method, req.headersDistinct, 'cinetpay-return');
    const order = load().orders[r.orderId];
    const os = order ? order.status : 'unknown';
    html = `<h1>Commande ${esc(r.orderId)}</h1>
<p>Paiement&nbsp;: <strong id="payment-status" data-status="${esc(r.status)}">${PAYMENT_WORDS[r.status] || 'statut inconnu'}</strong> (${esc(r.amount)} ${esc(r.currency)})</p>
<p>Commande&nbsp;: <strong id="order-status" data-status="${esc(os)}">${ORDER_WORDS[os] || 'introuvable'}</strong></p>`;
  } catch (e) {
    console.error(`return page not verified: ${e.message}`);
    html = `<h1>Paiement</h1><p id="unverified">Le statut du paiement n'a pas pu être vérifié.
La page de votre commande affichera le résultat dès qu'il sera arrivé.</p>`;
  }
  return send(res, 200, page('Paiement', html), 'text/html; charset=utf-8');
}

const HOME = page('Boutique', `<h1>Boutique (Node)</h1>
<form method="post" action="/checkout">
<p><select name="product" aria-label="Produit">${Object.entries(PRODUCTS).map(([k, p]) => `<option value="${k}">${esc(p.name)} — ${p.amount} XOF</option>`).join('')}</select></p>
<p><button>Payer avec CinetPay</button></p>
</form>`);

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
    if (url.pathname === '/cinetpay/standard-webhook' && req.method === 'POST') return standardWebhook(req, res);
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
