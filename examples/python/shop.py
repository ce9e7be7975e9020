"""A minimal shop behind Caddy and caddy-cinetpay, with Python's standard library only.

  POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
                           the payment; this shop never talks to CinetPay)
  POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
  POST /cinetpay/standard-webhook  the same, delivered in the Standard Webhooks format
                           (deliver_format standard-webhooks)
  GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
  GET  /orders/<id>        the order as the shop holds it (JSON)

Environment: SHOP_PORT (9000), SHOP_DATA (./data/shop-python), SIGNING_KEYS ("id:key,id2:key2"),
ACCEPT_SANDBOX ("1" accepts results of the CinetPay sandbox), STANDARD_WEBHOOKS_SECRET ("whsec_…", for
/cinetpay/standard-webhook).
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

# ---- Signature verification (README, "2. Deliveries"): the verifier of verifiers/python -----------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "verifiers", "python"))
import cinetpay_verifier  # noqa: E402  (found through the path above)


def verify(method, headers, tag):
    """Checks the "cinetpay" signature of a request (headers: BaseHTTPRequestHandler.headers) with
    the keys of SIGNING_KEYS and returns its verified Cinetpay-* values by lower-case header name,
    as apply_result reads them. Raises ValueError (a cinetpay_verifier.VerificationError) with the
    reason."""
    r = cinetpay_verifier.verify(method, headers, KEYS, tag, accept_sandbox=ACCEPT_SANDBOX)
    return {"cinetpay-transaction-id": r.transaction_id, "cinetpay-order-id": r.order_id,
            "cinetpay-status": r.status, "cinetpay-amount": r.amount, "cinetpay-currency": r.currency,
            "cinetpay-payment-method": r.payment_method, "cinetpay-operator-id": r.operator_id,
            "cinetpay-payment-date": r.payment_date, "cinetpay-environment": r.environment,
            "cinetpay-event-id": r.event_id}


# ---- Standard Webhooks (README.md, "Standard Webhooks") --------------------------------------------

SW_TOLERANCE = 5 * 60  # seconds either way between webhook-timestamp and now, as in the official libraries


def sw_key(secret):
    """The key of a whsec_ secret (STANDARD_WEBHOOKS_SECRET), None when it is not set."""
    if not secret:
        return None
    try:
        key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret, validate=True)
    except ValueError:
        key = b""
    if not key:
        sys.exit("STANDARD_WEBHOOKS_SECRET: expected whsec_ and the key in base64")
    return key


SW_KEY = sw_key(os.environ.get("STANDARD_WEBHOOKS_SECRET"))


def verify_standard_webhook(key, headers, body, now=None):
    """Checks a Standard Webhooks delivery as Webhook.verify of the official library
    (standardwebhooks) does, and returns its body decoded: webhook-timestamp within SW_TOLERANCE of
    now, and one of the space-separated "v1,<base64>" signatures equal (compare_digest) to
    HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>"). Raises ValueError."""
    msg_id, ts, sigs = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and ts and sigs):
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not re.fullmatch(r"[0-9]{1,18}", ts) or abs((time.time() if now is None else now) - int(ts)) > SW_TOLERANCE:
        raise ValueError("webhook-timestamp invalid, too old or too new")
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{int(ts)}.".encode() + body, hashlib.sha256).digest())
    for versioned in sigs.split(" "):
        version, _, sig = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), want):
            return json.loads(body)
    raise ValueError("no matching signature")


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


def page(title, body):
    """A page customers see, in French, readable on a phone; the codes stay in data-status."""
    return ("<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\n"
            "<style>body{margin:0 auto;max-width:34rem;padding:1rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}"
            f"h1,p{{overflow-wrap:anywhere}}select,button{{font:inherit;max-width:100%}}</style>\n{body}\n")


PAYMENT_WORDS = {"ACCEPTED": "accepté", "REFUSED": "refusé", "PENDING": "en attente de confirmation",
                 "EXPIRED": "expiré", "MISMATCH": "montant différent de la commande (à vérifier)",
                 "DUPLICATE": "en double (il sera remboursé)"}
ORDER_WORDS = {"awaiting_payment": "en attente de paiement", "paid": "payée", "payment_failed": "paiement non abouti"}

HOME = page("Boutique", "<h1>Boutique (Python)</h1>\n<form method=\"post\" action=\"/checkout\">"
            "<p><select name=\"product\" aria-label=\"Produit\">"
            + "".join(f'<option value="{k}">{html.escape(n)} — {a} XOF</option>' for k, (n, a) in PRODUCTS.items())
            + "</select></p><p><button>Payer avec CinetPay</button></p></form>")


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
        elif path == "/cinetpay/standard-webhook":
            self.standard_webhook(body)
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

    def standard_webhook(self, body):
        """A delivery in the Standard Webhooks format: verified, then refused, compared and applied
        once like the webhook's signed headers, with the same answers."""
        if SW_KEY is None:
            return self.send(503, "STANDARD_WEBHOOKS_SECRET is not set: Standard Webhooks deliveries cannot be verified\n")
        try:
            p = verify_standard_webhook(SW_KEY, self.headers, body)
            d = p.get("data") if isinstance(p, dict) else None
            d = d if isinstance(d, dict) else {}
            r = {"cinetpay-" + k.replace("_", "-"): d[k] if isinstance(d.get(k), str) else ""
                 for k in ("transaction_id", "order_id", "status", "amount", "currency", "environment", "event_id")}
            if not r["cinetpay-event-id"] or p.get("type") != "payment." + r["cinetpay-status"].lower():
                raise ValueError("not a payment result")
            env = r["cinetpay-environment"]
            if env != "live" and not (env == "sandbox" and ACCEPT_SANDBOX):
                raise ValueError(f"environment {env} refused")
        except ValueError as e:
            self.log_message("standard webhook refused: %s", e)
            return self.send(401, f"refused: {e}\n")
        note = apply_result(r)
        self.log_message("standard webhook %s %s %s: %s", r["cinetpay-event-id"], r["cinetpay-order-id"],
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
            status, order_status = r["cinetpay-status"], o["status"] if o else "unknown"
            body = (f"<h1>Commande {esc(r['cinetpay-order-id'])}</h1>\n"
                    f"<p>Paiement&nbsp;: <strong id=\"payment-status\" data-status=\"{esc(status)}\">"
                    f"{PAYMENT_WORDS.get(status, 'statut inconnu')}</strong> "
                    f"({esc(r['cinetpay-amount'])} {esc(r['cinetpay-currency'])})</p>\n"
                    f"<p>Commande&nbsp;: <strong id=\"order-status\" data-status=\"{esc(order_status)}\">"
                    f"{ORDER_WORDS.get(order_status, 'introuvable')}</strong></p>")
        except ValueError as e:
            self.log_message("return page not verified: %s", e)
            body = ("<h1>Paiement</h1><p id=\"unverified\">Le statut du paiement n'a pas pu être vérifié.\n"
                    "La page de votre commande affichera le résultat dès qu'il sera arrivé.</p>")
        self.send(200, page("Paiement", body), "text/html; charset=utf-8")


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    init = connect()
    init.executescript(SCHEMA)
    init.close()
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Shop)
    print(f"shop (python) on http://127.0.0.1:{PORT}", flush=True)
    server.serve_forever()
