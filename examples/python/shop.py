"""A minimal shop behind Caddy and caddy-cinetpay, with Python's standard library only.

  POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
                           the payment; this shop never talks to CinetPay)
  POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
  GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
  GET  /orders/<id>        the order as the shop holds it (JSON)

Environment: SHOP_PORT (9000), SHOP_DATA (./data/shop-python), SIGNING_KEYS ("id:key,id2:key2"),
ACCEPT_SANDBOX ("1" accepts results of the CinetPay sandbox).
"""

import base64
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import sqlite3
import sys
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("SHOP_PORT") or 9000)
DATA = os.environ.get("SHOP_DATA") or "data/shop-python"
DB = os.path.join(DATA, "shop.sqlite3")
ACCEPT_SANDBOX = os.environ.get("ACCEPT_SANDBOX") == "1"
SKEW = 60  # seconds of clock skew allowed on created and expires

PRODUCTS = {
    "wax": ("Tissu wax — édition spéciale", 5000),
    "attieke": ("Attiéké, 1 kg", 1500),
}


def parse_keys(s):
    """SIGNING_KEYS is "id1:key1,id2:key2": several keys let the shop rotate (add the new key,
    switch Caddy's signing_key to it, then remove the old one)."""
    keys = {}
    for part in filter(None, (p.strip() for p in s.split(","))):
        kid, sep, key = part.partition(":")
        if not kid or not sep or not key:
            sys.exit("SIGNING_KEYS: expected id:key[,id:key]")
        keys[kid] = key.encode()
    if not keys:
        sys.exit("SIGNING_KEYS is required (id:key[,id:key])")
    return keys


KEYS = parse_keys(os.environ.get("SIGNING_KEYS", ""))

# ---- Signature verification (README, "2. Deliveries": RFC 9421, hmac-sha256, label "cinetpay") -----------------
#
# Items are (type, value) with type "string", "token", "integer", "decimal", "bytes" or "boolean";
# parameters are dicts (insertion-ordered); a dictionary member is (item or list of (item, params),
# params).

KEY_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*")
NUMBER_RE = re.compile(r"-?([0-9]+)(?:(\.)([0-9]*))?")
TOKEN_RE = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class Malformed(ValueError):
    pass


def parse_dictionary(s):
    """Parses an RFC 8941 dictionary, as Signature-Input and Signature are."""
    i = 0

    def fail(what):
        raise Malformed(f"malformed structured field: {what} at {i}")

    def skip(chars):
        nonlocal i
        while i < len(s) and s[i] in chars:
            i += 1

    def key():
        nonlocal i
        m = KEY_RE.match(s, i)
        if not m:
            fail("bad key")
        i = m.end()
        return m.group()

    def bare_item():
        nonlocal i
        c = s[i] if i < len(s) else ""
        if c == '"':
            out, i = [], i + 1
            while i < len(s):
                ch = s[i]
                i += 1
                if ch == '"':
                    return ("string", "".join(out))
                if ch == "\\":
                    if i >= len(s) or s[i] not in '"\\':
                        fail("bad escape")
                    ch, i = s[i], i + 1
                elif not " " <= ch <= "~":
                    fail("bad string character")
                out.append(ch)
            fail("unterminated string")
        if c == "-" or "0" <= c <= "9":
            m = NUMBER_RE.match(s, i)
            if not m:
                fail("bad number")
            i = m.end()
            if m.group(2) is None:
                if len(m.group(1)) > 15:
                    fail("integer too long")
                return ("integer", int(m.group()))
            if len(m.group(1)) > 12 or not 1 <= len(m.group(3)) <= 3:
                fail("bad decimal")
            return ("decimal", m.group())
        if c == ":":
            end = s.find(":", i + 1)
            b64 = s[i + 1:end] if end > 0 else ""
            if end < 0 or not B64_RE.fullmatch(b64) or len(b64) % 4:
                fail("bad byte sequence")
            i = end + 1
            return ("bytes", base64.b64decode(b64))
        if c == "?" and s[i + 1:i + 2] in ("0", "1"):
            i += 2
            return ("boolean", s[i - 1] == "1")
        m = TOKEN_RE.match(s, i)
        if not m:
            fail("bad item")
        i = m.end()
        return ("token", m.group())

    def params():
        nonlocal i
        p = {}  # a repeated key keeps its first position and its last value
        while s[i:i + 1] == ";":
            i += 1
            skip(" ")
            k = key()
            v = ("boolean", True)
            if s[i:i + 1] == "=":
                i += 1
                v = bare_item()
            p[k] = v
        return p

    out = {}
    skip(" ")
    while i < len(s):
        k = key()
        if s[i:i + 2] == "=(":
            i += 2
            value = []
            while True:
                skip(" ")
                if s[i:i + 1] == ")":
                    i += 1
                    break
                if i >= len(s):
                    fail("unterminated inner list")
                value.append((bare_item(), params()))
                if s[i:i + 1] not in (" ", ")"):
                    fail("expected ' ' or ')'")
        elif s[i:i + 1] == "=":
            i += 1
            value = bare_item()
        else:
            value = ("boolean", True)
        out[k] = (value, params())
        skip(" \t")
        if i >= len(s):
            break
        if s[i] != ",":
            fail("expected ','")
        i += 1
        skip(" \t")
        if i >= len(s):
            fail("trailing ','")
    return out


def serialize_item(item):
    kind, v = item
    if kind == "string":
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind == "integer":
        return str(v)
    if kind == "bytes":
        return ":" + base64.b64encode(v).decode() + ":"
    if kind == "boolean":
        return "?1" if v else "?0"
    return v  # token, decimal: as written


def serialize_params(params):
    return "".join(f";{k}" if v == ("boolean", True) else f";{k}={serialize_item(v)}" for k, v in params.items())


PARAM_TYPES = {"created": "integer", "expires": "integer", "keyid": "string", "alg": "string",
               "nonce": "string", "tag": "string"}
REQUIRED = ["@method", "cinetpay-transaction-id", "cinetpay-order-id", "cinetpay-status",
            "cinetpay-amount", "cinetpay-currency", "cinetpay-environment"]


def verify(method, headers, tag, now=None):
    """Checks the "cinetpay" signature of a request (headers: an email.message.Message, as
    BaseHTTPRequestHandler.headers is) and returns its verified Cinetpay-* values, lower-case
    name → value. Raises ValueError with the reason."""
    now = int(time.time()) if now is None else now

    def field(name):
        lines = headers.get_all(name)
        return None if lines is None else ", ".join(line.strip(" \t") for line in lines)

    sig_input, sig = field("Signature-Input"), field("Signature")
    if sig_input is None or sig is None:
        raise ValueError("no Signature-Input or Signature")
    inp, sig = parse_dictionary(sig_input).get("cinetpay"), parse_dictionary(sig).get("cinetpay")
    if inp is None or sig is None:
        raise ValueError('no "cinetpay" signature')
    components, sig_params = inp
    if not isinstance(components, list):
        raise ValueError("Signature-Input cinetpay is not an inner list")
    if isinstance(sig[0], list) or sig[0][0] != "bytes":
        raise ValueError("Signature cinetpay is not a byte sequence")

    p = {}
    for k, (kind, v) in sig_params.items():
        if k in PARAM_TYPES:
            if kind != PARAM_TYPES[k]:
                raise ValueError(f"{k} is not a {PARAM_TYPES[k]}")
            p[k] = v
    # the algorithm is never taken from the message: it is HMAC-SHA256, and any other alg is refused
    if p.get("alg", "hmac-sha256") != "hmac-sha256":
        raise ValueError(f"alg {p['alg']} refused")
    if p.get("tag") != tag:
        raise ValueError(f"tag {p.get('tag')}, want {tag}")
    key = KEYS.get(p.get("keyid"))
    if key is None:
        raise ValueError(f"unknown keyid {p.get('keyid')}")
    if "created" not in p or "expires" not in p:
        raise ValueError("created and expires are required")
    if p["created"] > now + SKEW:
        raise ValueError("created in the future")
    if now >= p["expires"] + SKEW:
        raise ValueError("expired")

    # the signature base of RFC 9421 §2.5, over the covered components as listed
    covered, base = {}, ""
    for (kind, name), params in components:
        if kind != "string" or params or not name or name != name.lower() \
                or name == "@signature-params" or name in covered:
            raise ValueError(f"bad component {name}")
        if name == "@method":
            value = method
        elif name.startswith("@"):
            raise ValueError(f"component {name} not supported")
        elif (value := field(name)) is None:
            raise ValueError(f"covered header {name} missing")
        if not all(" " <= ch <= "~" for ch in value):
            raise ValueError(f"header {name} is not printable ASCII")
        covered[name] = value
        base += f"{serialize_item((kind, name))}: {value}\n"
    for c in REQUIRED + (["cinetpay-event-id"] if tag == "cinetpay-notify" else []):
        if c not in covered:
            raise ValueError(f"{c} is not covered")
    for name in headers.keys():
        if name.lower().replace("_", "-").startswith("cinetpay-") and name.lower() not in covered:
            raise ValueError(f"header {name} is not covered")
    listed = " ".join(serialize_item(it) + serialize_params(ps) for it, ps in components)
    base += f'"@signature-params": ({listed}){serialize_params(sig_params)}'

    mac = hmac.new(key, base.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, sig[0][1]):
        raise ValueError("signature does not match")
    env = covered["cinetpay-environment"]
    if env != "live" and not (env == "sandbox" and ACCEPT_SANDBOX):
        raise ValueError(f"environment {env} refused")
    if tag == "cinetpay-notify" and not covered["cinetpay-event-id"]:
        raise ValueError("empty event id")
    return covered


# ---- Store: SQLite, every change in one transaction ------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, product TEXT, description TEXT,
  amount INTEGER, currency TEXT, status TEXT, transaction_id TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, order_id TEXT, transaction_id TEXT,
  status TEXT, note TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS flags (id INTEGER PRIMARY KEY, order_id TEXT, event_id TEXT,
  transaction_id TEXT, status TEXT, reason TEXT, at TEXT);
"""


def connect():
    db = sqlite3.connect(DB, timeout=30, isolation_level=None)  # transactions are explicit
    db.row_factory = sqlite3.Row
    return db


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def order_json(db, order_id):
    o = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if o is None:
        return None
    o = dict(o)
    o["events"] = [r[0] for r in db.execute("SELECT event_id FROM events WHERE order_id = ? ORDER BY rowid", (order_id,))]
    o["flags"] = [dict(r) for r in db.execute(
        "SELECT event_id, transaction_id, status, reason, at FROM flags WHERE order_id = ? ORDER BY id", (order_id,))]
    return o


def apply_result(r):
    """Applies a verified delivery to its order, together with its event id, in one transaction."""
    event, order_id, status = r["cinetpay-event-id"], r["cinetpay-order-id"], r["cinetpay-status"]
    tx, amount, currency = r["cinetpay-transaction-id"], r["cinetpay-amount"], r["cinetpay-currency"]
    db = connect()
    try:
        db.execute("BEGIN IMMEDIATE")  # takes the write lock: one delivery at a time
        if db.execute("SELECT 1 FROM events WHERE event_id = ?", (event,)).fetchone():
            db.execute("ROLLBACK")
            return "already applied"
        order = db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        if order is None:
            # Acknowledged (2xx) but not recorded: once the order is restored, a replay of this
            # event through Caddy's admin API is applied instead of answered "already applied".
            db.execute("ROLLBACK")
            return "unknown order: not applied"
        flag = None
        if amount != str(order["amount"]) or currency != order["currency"]:
            note = flag = (f"{amount} {currency} differs from the order's {order['amount']} {order['currency']}: "
                           "recorded for review, not applied")
        elif status == "ACCEPTED" and order["status"] == "paid" and order["transaction_id"] not in (None, tx):
            # paid by another transaction: the order keeps its payment, the merchant refunds this one
            note = flag = f"paid twice: refund {tx}"
        elif status == "ACCEPTED":
            db.execute("UPDATE orders SET status = 'paid', transaction_id = ? WHERE id = ?", (tx, order_id))
            note = "order paid"
        elif status in ("REFUSED", "EXPIRED"):  # a later ACCEPTED still wins
            db.execute("UPDATE orders SET status = 'payment_failed' WHERE id = ? AND status != 'paid'", (order_id,))
            note = f"payment {status.lower()}"
        elif status in ("MISMATCH", "DUPLICATE"):
            note = flag = ("paid twice: refund this transaction" if status == "DUPLICATE"
                           else "paid another amount: review and refund")
        else:
            note = f"status {status} ignored"
        if flag:
            db.execute("INSERT INTO flags (order_id, event_id, transaction_id, status, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                       (order_id, event, tx, status, flag, now_iso()))
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", (event, order_id, tx, status, note, now_iso()))
        db.execute("COMMIT")
        return note
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()


# ---- HTTP ------------------------------------------------------------------------------------------


def pct(s):
    """Percent-encodes text for a Cinetpay-* header (RFC 3986 unreserved characters stay); the
    module decodes it."""
    return urllib.parse.quote(s, safe="")


HOME = ("<!doctype html><meta charset=\"utf-8\"><title>Shop</title>\n<h1>Shop (Python)</h1>\n"
        "<form method=\"post\" action=\"/checkout\"><select name=\"product\">"
        + "".join(f'<option value="{k}">{html.escape(n)} — {a} XOF</option>' for k, (n, a) in PRODUCTS.items())
        + "</select> <button>Pay with CinetPay</button></form>\n")


class Shop(BaseHTTPRequestHandler):
    server_version = "shop-python"

    def send(self, status, body, ctype="text/plain; charset=utf-8", headers=()):
        data = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def internal_error(self, e):
        """A store error (disk full, I/O error, …): 500, so the module retries a delivery."""
        self.log_error("internal error: %r", e)
        self.close_connection = True
        try:
            self.send(500, "internal error\n")
        except OSError:
            pass

    def do_GET(self):
        try:
            self.get()
        except Exception as e:  # any failure is answered, not a dropped connection
            self.internal_error(e)

    def do_POST(self):
        try:
            self.post()
        except Exception as e:
            self.internal_error(e)

    def get(self):
        path = urllib.parse.urlsplit(self.path).path
        m = re.fullmatch(r"/orders/([A-Za-z0-9._-]{1,64})", path)
        if path == "/":
            self.send(200, HOME, "text/html; charset=utf-8")
        elif path == "/cinetpay/return":
            self.return_page()
        elif m:
            db = connect()
            try:
                o = order_json(db, m.group(1))
            finally:
                db.close()
            if o is None:
                self.send(404, "no such order\n")
            else:
                self.send(200, json.dumps(o, indent=2, ensure_ascii=False) + "\n", "application/json")
        else:
            self.send(404, "not found\n")

    def post(self):
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length > 65536:
            return self.send(413, "too large\n")
        body = self.rfile.read(length) if length > 0 else b""
        if path == "/checkout":
            self.checkout(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        elif path == "/cinetpay/webhook":
            self.webhook()
        else:
            self.send(404, "not found\n")

    def checkout(self, form):
        product = (form.get("product") or ["wax"])[0]
        if product not in PRODUCTS:
            return self.send(400, "unknown product\n")
        name, amount = PRODUCTS[product]
        order_id = "ord_" + secrets.token_hex(8)
        db = connect()
        try:  # one INSERT: its own transaction
            db.execute("INSERT INTO orders VALUES (?, ?, ?, ?, 'XOF', 'awaiting_payment', NULL, ?)",
                       (order_id, product, name, amount, now_iso()))
        finally:
            db.close()
        # Caddy replaces this answer with a 303 to CinetPay's payment page (README, "1. Checkout").
        self.send(200, f"order {order_id} created\n", headers=[
            ("Cinetpay-Amount", str(amount)),
            ("Cinetpay-Order-Id", order_id),
            ("Cinetpay-Currency", "XOF"),
            ("Cinetpay-Description", pct(name)),
            ("Cinetpay-Customer-Name", pct("Aya")),
            ("Cinetpay-Customer-Surname", pct("Kouadio")),
            ("Cinetpay-Customer-Email", "aya.kouadio@example.test"),
            ("Cinetpay-Customer-Phone-Number", "+2250700000000"),
            ("Cinetpay-Customer-Address", pct("Rue des Jardins")),
            ("Cinetpay-Customer-City", pct("Abidjan")),
            ("Cinetpay-Customer-Country", "CI"),
            ("Cinetpay-Customer-Zip-Code", "00225"),
            ("Cinetpay-Metadata", pct("order=" + order_id)),
        ])

    def webhook(self):
        try:
            r = verify(self.command, self.headers, "cinetpay-notify")
        except ValueError as e:
            self.log_message("webhook refused: %s", e)
            return self.send(401, f"bad signature: {e}\n")
        note = apply_result(r)
        self.log_message("webhook %s %s %s: %s", r["cinetpay-event-id"], r["cinetpay-order-id"],
                         r["cinetpay-status"], note)
        self.send(200, note + "\n")  # 2xx: the module stops retrying this event

    def return_page(self):
        esc = html.escape
        try:
            r = verify(self.command, self.headers, "cinetpay-return")
            db = connect()
            try:
                o = order_json(db, r["cinetpay-order-id"])
            finally:
                db.close()
            page = (f"<h1>Order {esc(r['cinetpay-order-id'])}</h1>\n"
                    f"<p>Payment: <strong id=\"payment-status\">{esc(r['cinetpay-status'])}</strong> "
                    f"({esc(r['cinetpay-amount'])} {esc(r['cinetpay-currency'])})</p>\n"
                    f"<p>Order: <strong id=\"order-status\">{esc(o['status']) if o else 'unknown'}</strong></p>")
        except ValueError as e:
            page = (f"<h1>Payment</h1><p>The payment status could not be verified ({esc(str(e))}).\n"
                    "Your order page shows the result once it arrives.</p>")
        self.send(200, f"<!doctype html><meta charset=\"utf-8\"><title>Payment</title>\n{page}\n",
                  "text/html; charset=utf-8")


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    init = connect()
    init.executescript(SCHEMA)
    init.close()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Shop)
    print(f"shop (python) on http://127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
