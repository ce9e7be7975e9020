// Tests of the verifier: the shared vectors (../testdata/vectors.json, generated and checked
// against the Go reference by the repository's verifiers/vectors_test.go), then Node's own cases.
// Run in this directory: node --test
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const v = require('.');

const { vectors } = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'testdata', 'vectors.json'), 'utf8'));
const vector = (name) => vectors.find((x) => x.name === name);
const run = (x, headers = x.headers, opts = {}) =>
  v.verify(x.method, headers, x.keys, x.tag, { acceptSandbox: x.accept_sandbox, now: x.now, ...opts });
const snake = (r) => Object.fromEntries(Object.entries(r).map(([k, val]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), val]));

test('shared vectors', async (t) => {
  assert.ok(vectors.length > 10);
  for (const x of vectors) {
    await t.test(x.name, () => {
      if (x.result) {
        assert.deepEqual(snake(run(x)), x.result);
        return;
      }
      assert.throws(() => run(x), (e) => {
        assert.ok(e instanceof v.VerificationError, String(e));
        assert.equal(e.kind, x.error, e.message);
        for (const k of Object.values(x.keys)) if (k) assert.ok(!e.message.includes(k), 'a key in the error');
        return true;
      });
    });
  }
});

test('header shapes: Map, fetch Headers, pairs, joined values', () => {
  const x = vector('valid delivery');
  assert.equal(run(x, new Map(Object.entries(x.headers))).orderId, 'ord_0001');
  assert.equal(run(x, Object.entries(x.headers).map(([k, l]) => [k.toUpperCase(), l[0]])).eventId, 'evt_0001');
  assert.equal(run(x, new Headers(Object.entries(x.headers).map(([k, l]) => [k, l[0]]))).status, 'ACCEPTED');
  assert.equal(run(x, x.headers, { now: new Date(x.now * 1000) }).keyId, 'shop1');
  assert.equal(v.verify(x.method, x.headers, new Map([['shop1', Buffer.from(x.keys.shop1)]]), x.tag, { now: x.now }).amount, '5000');
  for (const bad of [null, 'x', { ...x.headers, 'Cinetpay-Amount': [5000] }, [['a']]]) {
    assert.throws(() => run(x, bad), (e) => e instanceof v.VerificationError && e.kind === 'malformed');
  }
});

test('keys: no inherited properties', () => {
  const x = vector('valid delivery');
  const h = { ...x.headers, 'Signature-Input': [x.headers['Signature-Input'][0].replace('keyid="shop1"', 'keyid="constructor"')] };
  assert.throws(() => run(x, h), (e) => e.kind === 'invalid' && /unknown keyid/.test(e.message));
});

test('now defaults to the clock; fractions count', () => {
  const x = vector('valid delivery');
  assert.throws(() => v.verify(x.method, x.headers, x.keys, x.tag), /expired/);
  const e = vector('expired');
  assert.equal(run(e, e.headers, { now: e.now - 0.001 }).orderId, 'ord_0001');
});

test('only @method among derived components', () => {
  const x = vector('valid delivery');
  const h = { ...x.headers, 'Signature-Input': [x.headers['Signature-Input'][0].replace('"@method"', '"@method" "@path"')] };
  assert.throws(() => run(x, h), (e) => e.kind === 'malformed');
});

test('malformed headers never crash', () => {
  const x = vector('valid delivery');
  for (const name of ['Signature-Input', 'Signature']) {
    const orig = x.headers[name][0];
    for (let i = 0; i <= orig.length; i++) {
      for (const edit of [orig.slice(0, i), `${orig.slice(0, i)}\x00${orig.slice(i + 1)}`, `${orig.slice(0, i)}"${orig.slice(i)}`, `${orig.slice(0, i)}é${orig.slice(i)}`]) {
        try {
          run(x, { ...x.headers, [name]: [edit] });
          assert.equal(edit, orig);
        } catch (e) {
          assert.ok(e instanceof v.VerificationError, `${edit}: ${e}`);
        }
      }
    }
  }
});

test('verifyRequest reads every raw line of a node:http request', async () => {
  const ok = vector('valid delivery');
  const repeated = vector('covered header repeated');
  const seen = [];
  const server = http.createServer((req, res) => {
    const x = req.url === '/ok' ? ok : repeated;
    try {
      seen.push(v.verifyRequest(req, x.keys, x.tag, { now: x.now }).orderId);
    } catch (e) {
      seen.push(e.kind);
    }
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const send = (p, x) => new Promise((resolve, reject) => {
    // an array value is sent as one line per element
    const req = http.request({ host: '127.0.0.1', port: server.address().port, path: p, method: x.method, headers: x.headers }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  try {
    await send('/ok', ok);
    await send('/repeated', repeated);
  } finally {
    server.close();
  }
  assert.deepEqual(seen, ['ord_0001', 'invalid']);
});

test('version', () => {
  assert.equal(v.VERSION, require('./package.json').version);
});
