"""Verifies the signed headers caddy-cinetpay sends to a shop: RFC 9421 HTTP Message Signatures
with hmac-sha256 under the label "cinetpay" (the project's README, "2. Deliveries", "3. The return
page" and "Verifying the signature in your language"). Standard library only; the rules are those
of the module's Go verifier, httpsig.Verifier, and the shared test vectors keep them equal.

    from cinetpay_verifier import verify, VerificationError, TAG_NOTIFY

    try:
        r = verify(handler.command, handler.headers, {"shop1": key}, TAG_NOTIFY)
    except VerificationError as e:
        ...  # answer 401
    # compare r.order_id, r.amount, r.currency with your order; apply r.event_id once
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

__version__ = "0.1.0"
__all__ = ["verify", "Result", "VerificationError", "TAG_NOTIFY", "TAG_RETURN", "SKEW"]

LABEL = "cinetpay"
ALGORITHM = "hmac-sha256"
TAG_NOTIFY = "cinetpay-notify"  # deliveries
TAG_RETURN = "cinetpay-return"  # return pages
SKEW = 60  # seconds of clock skew allowed on created and expires

REQUIRED = ("@method", "cinetpay-transaction-id", "cinetpay-order-id", "cinetpay-status",
            "cinetpay-amount", "cinetpay-currency", "cinetpay-environment")


class VerificationError(ValueError):
    """The message is refused. kind is "missing" (no "cinetpay" signature), "malformed" (the
    headers do not parse, or use what the scheme does not allow) or "invalid" (a rule is broken:
    key id, tag, coverage, time, environment, MAC). The message never holds a key."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Result:
    """What a verified message says. Values are as sent: the module percent-encodes any byte that
    is not printable ASCII, and "%" (urllib.parse.unquote to display them)."""

    transaction_id: str
    order_id: str
    status: str
    amount: str
    currency: str
    payment_method: str
    operator_id: str
    payment_date: str
    environment: str
    event_id: str  # deliveries: apply each event id once
    key_id: str
    nonce: str
    created: int
    expires: int


Headers = Union[Mapping[str, Any], Iterable["tuple[str, Any]"]]

# ---- RFC 8941 (Structured Field Values): what Signature-Input and Signature use. Items are
# (type, value), type "string", "token", "integer", "decimal", "bytes" or "boolean"; parameters
# are insertion-ordered dicts; a dictionary member is (item or list of (item, params), params).

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?([0-9]+)(?:(\.)([0-9]*))?")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _parse_dictionary(s: str) -> dict:
    i = 0

    def fail(what: str):
        raise VerificationError("malformed", f"malformed structured field: {what} at offset {i}")

    def skip(chars: str) -> None:
        nonlocal i
        while i < len(s) and s[i] in chars:
            i += 1

    def key() -> str:
        nonlocal i
        m = _KEY.match(s, i)
        if not m:
            fail("bad key")
        i = m.end()
        return m.group()

    def bare_item() -> tuple:
        nonlocal i
        c = s[i:i + 1]
        if c == '"':
            out, i = [], i + 1
            while i < len(s):
                ch, i = s[i], i + 1
                if ch == '"':
                    return ("string", "".join(out))
                if ch == "\\":
                    if s[i:i + 1] not in ('"', "\\"):
                        fail("bad escape")
                    ch, i = s[i], i + 1
                elif not " " <= ch <= "~":
                    fail("bad string character")
                out.append(ch)
            fail("unterminated string")
        if c == "-" or "0" <= c <= "9":
            m = _NUMBER.match(s, i)
            if not m:
                fail("bad number")
            i = m.end()
            if m.group(2) is None:
                if len(m.group(1)) > 15:
                    fail("bad number")
                return ("integer", int(m.group()))
            if len(m.group(1)) > 12 or not 1 <= len(m.group(3)) <= 3:
                fail("bad number")
            return ("decimal", m.group())
        if c == ":":
            end = s.find(":", i + 1)
            b64 = s[i + 1:end] if end > 0 else ""
            if end < 0 or not _B64.fullmatch(b64) or len(b64) % 4:
                fail("bad byte sequence")
            i = end + 1
            try:
                return ("bytes", base64.b64decode(b64, validate=True))
            except binascii.Error:
                fail("bad byte sequence")
        if c == "?" and s[i + 1:i + 2] in ("0", "1"):
            i += 2
            return ("boolean", s[i - 1] == "1")
        m = _TOKEN.match(s, i)
        if not m:
            fail("bad item")
        i = m.end()
        return ("token", m.group())

    def params() -> dict:
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
            value: Any = []
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
        out[k] = (value, params())  # a later duplicate replaces an earlier one
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


def _serialize_item(item: tuple) -> str:
    kind, v = item
    if kind == "string":
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind == "integer":
        return str(v)
    if kind == "bytes":
        return ":" + base64.b64encode(v).decode("ascii") + ":"
    if kind == "boolean":
        return "?1" if v else "?0"
    return v  # token, decimal: as written


def _serialize_params(params: dict) -> str:
    return "".join(f";{k}" if v == ("boolean", True) else f";{k}={_serialize_item(v)}"
                   for k, v in params.items())


# ---- headers


def _header_lines(headers: Headers) -> dict:
    """Lower-case name → lines, from a mapping (str or list of str values: a dict, Django's
    request.headers) or anything with items() yielding every line (http.server's
    BaseHTTPRequestHandler.headers, Werkzeug's Headers), or an iterable of (name, value)."""
    pairs = headers.items() if hasattr(headers, "items") else headers
    out: dict = {}
    for name, value in pairs:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bytes):
                v = v.decode("latin-1")
            if not isinstance(name, str) or not isinstance(v, str):
                raise VerificationError("malformed", f"header {name!r} is not text")
            out.setdefault(name.lower(), []).append(v)
    return out


def _value(lines: dict, name: str) -> str:
    """A header field's value: its lines trimmed and joined with ", " (RFC 9421 §2.1)."""
    if name not in lines:
        raise VerificationError("invalid", f"covered header {name} is missing")
    value = ", ".join(line.strip(" \t") for line in lines[name])
    if not all(" " <= ch <= "~" for ch in value):
        raise VerificationError("malformed", f"header {name} is not printable ASCII")
    return value


_PARAM_TYPES = {"created": "integer", "expires": "integer", "keyid": "string", "alg": "string",
                "nonce": "string", "tag": "string"}


def verify(method: str, headers: Headers, keys: Mapping[str, Union[str, bytes]], tag: str, *,
           accept_sandbox: bool = False, now: float | None = None) -> Result:
    """Checks the "cinetpay" signature of a request and returns what it verifies; raises
    VerificationError with the reason.

    method: the request's method. headers: the request's headers (see _header_lines). keys: key
    id → key (several let you rotate). tag: TAG_NOTIFY for deliveries, TAG_RETURN for return
    pages. accept_sandbox: accept Cinetpay-Environment "sandbox" (development only). now: Unix
    seconds, default the current time.

    Reads the "cinetpay" label only; picks the key by keyid; uses HMAC-SHA256 whatever the message
    says (an alg other than hmac-sha256 is refused); requires the tag, created and expires (60 s
    of skew), and coverage of @method, the transaction id, order id, status, amount, currency,
    environment and, for deliveries, the event id; refuses any Cinetpay-* (or Cinetpay_*) header
    left uncovered. The only derived component is @method.
    """
    now = time.time() if now is None else now
    h = _header_lines(headers)
    if "signature-input" not in h or "signature" not in h:
        raise VerificationError("missing", "no Signature-Input or Signature header")
    inp = _parse_dictionary(", ".join(h["signature-input"])).get(LABEL)
    sig = _parse_dictionary(", ".join(h["signature"])).get(LABEL)
    if inp is None or sig is None:
        raise VerificationError("missing", f'no "{LABEL}" label')
    components, sig_params = inp
    if not isinstance(components, list):
        raise VerificationError("malformed", f"Signature-Input {LABEL} is not an inner list")
    if isinstance(sig[0], list) or sig[0][0] != "bytes":
        raise VerificationError("malformed", f"Signature {LABEL} is not a byte sequence")

    p: dict = {}
    for k, (kind, v) in sig_params.items():
        if k in _PARAM_TYPES:
            if kind != _PARAM_TYPES[k]:
                raise VerificationError("malformed", f"{k} is not of type {_PARAM_TYPES[k]}")
            # the algorithm is never taken from the message: HMAC-SHA256, any other alg refused
            if k == "alg" and v != ALGORITHM:
                raise VerificationError("invalid", f"alg {v!r} is not {ALGORITHM}")
            p[k] = v
    if not tag or p.get("tag") != tag:
        raise VerificationError("invalid", f"tag {p.get('tag', '')!r}, want {tag!r}")
    key_id = p.get("keyid", "")
    key = keys.get(key_id) if key_id else None
    if not key:
        raise VerificationError("invalid", f"unknown keyid {key_id!r}")
    if isinstance(key, str):
        key = key.encode("utf-8")
    if "created" not in p or "expires" not in p:
        raise VerificationError("invalid", "created and expires are required")
    if p["created"] > now + SKEW:
        raise VerificationError("invalid", "created in the future")
    if now >= p["expires"] + SKEW:
        raise VerificationError("invalid", "expired")

    covered = {name for (kind, name), _ in components if kind == "string"}
    for c in REQUIRED + (("cinetpay-event-id",) if tag == TAG_NOTIFY else ()):
        if c not in covered:
            raise VerificationError("invalid", f"{c} is not covered")
    for name in sorted(h):
        if name.replace("_", "-").startswith("cinetpay-") and name not in covered:
            raise VerificationError("invalid", f"header {name} is not covered")

    # the signature base of RFC 9421 §2.5, over the covered components as listed
    base, seen = [], set()
    for (kind, name), params in components:
        if kind != "string":
            raise VerificationError("malformed", "component identifier is not a string")
        if params:
            raise VerificationError("malformed", "component parameters are not supported")
        if not name or name != name.lower() or name == "@signature-params" or name in seen:
            raise VerificationError("malformed", f"bad or repeated component {name!r}")
        seen.add(name)
        if name == "@method":
            value = method
        elif name.startswith("@"):
            raise VerificationError("malformed", f"derived component {name} is not supported")
        else:
            value = _value(h, name)
        base.append(f"{_serialize_item((kind, name))}: {value}\n")
    listed = " ".join(_serialize_item(it) + _serialize_params(ps) for it, ps in components)
    base.append(f'"@signature-params": ({listed}){_serialize_params(sig_params)}')
    mac = hmac.new(key, "".join(base).encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, sig[0][1]):
        raise VerificationError("invalid", "signature does not match")

    def get(name: str) -> str:
        return _value(h, name) if name in h else ""

    r = Result(
        transaction_id=get("cinetpay-transaction-id"), order_id=get("cinetpay-order-id"),
        status=get("cinetpay-status"), amount=get("cinetpay-amount"), currency=get("cinetpay-currency"),
        payment_method=get("cinetpay-payment-method"), operator_id=get("cinetpay-operator-id"),
        payment_date=get("cinetpay-payment-date"), environment=get("cinetpay-environment"),
        event_id=get("cinetpay-event-id"), key_id=key_id, nonce=p.get("nonce", ""),
        created=p["created"], expires=p["expires"])
    if r.environment == "sandbox":
        if not accept_sandbox:
            raise VerificationError("invalid", "sandbox result refused")
    elif r.environment != "live":
        raise VerificationError("invalid", f"environment {r.environment!r}")
    if tag == TAG_NOTIFY and not r.event_id:
        raise VerificationError("invalid", "empty event id")
    return r
