"""Tests of cinetpay_verifier: the shared vectors (../testdata/vectors.json, generated and checked
against the Go reference by the repository's verifiers/vectors_test.go), then Python's own cases.
Run from this directory: python3 -m unittest"""

import dataclasses
import email.parser
import json
import os
import time
import unittest

import cinetpay_verifier as cv

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "vectors.json")

with open(VECTORS, encoding="utf-8") as f:
    ALL = json.load(f)["vectors"]


def run(v, headers=None, **kw):
    args = dict(accept_sandbox=v["accept_sandbox"], now=v["now"])
    args.update(kw)
    return cv.verify(v["method"], v["headers"] if headers is None else headers, v["keys"], v["tag"], **args)


def vector(name):
    return next(v for v in ALL if v["name"] == name)


class Vectors(unittest.TestCase):
    def test_vectors(self):
        self.assertGreater(len(ALL), 10)
        for v in ALL:
            with self.subTest(v["name"]):
                if "result" in v:
                    self.assertEqual(dataclasses.asdict(run(v)), v["result"])
                else:
                    with self.assertRaises(cv.VerificationError) as ctx:
                        run(v)
                    self.assertEqual(ctx.exception.kind, v["error"], str(ctx.exception))
                    for key in v["keys"].values():
                        if key:
                            self.assertNotIn(key, str(ctx.exception))


class Headers(unittest.TestCase):
    def test_http_server_message(self):
        """BaseHTTPRequestHandler.headers: an email.message.Message, repeated lines kept."""
        v = vector("other labels beside cinetpay")
        text = "".join(f"{name}: {line}\r\n" for name, lines in v["headers"].items() for line in lines)
        msg = email.parser.Parser().parsestr(text + "\r\n", headersonly=True)
        self.assertEqual(run(v, msg).order_id, "ord_0001")
        tampered = vector("covered header repeated")
        text = "".join(f"{name}: {line}\r\n" for name, lines in tampered["headers"].items() for line in lines)
        with self.assertRaises(cv.VerificationError):
            run(tampered, email.parser.Parser().parsestr(text + "\r\n", headersonly=True))

    def test_pairs_and_joined_values(self):
        v = vector("valid delivery")
        pairs = [(name, line) for name, lines in v["headers"].items() for line in lines]
        self.assertEqual(run(v, pairs).event_id, "evt_0001")
        self.assertEqual(run(v, {k.upper(): ls[0] for k, ls in v["headers"].items()}).event_id, "evt_0001")
        self.assertEqual(run(v, {k: [s.encode() for s in ls] for k, ls in v["headers"].items()}).status, "ACCEPTED")

    def test_bad_header_types(self):
        v = vector("valid delivery")
        for bad in ({**v["headers"], "Cinetpay-Amount": None}, {**v["headers"], "Cinetpay-Amount": [5000]}):
            with self.assertRaises(cv.VerificationError) as ctx:
                run(v, bad)
            self.assertEqual(ctx.exception.kind, "malformed")


class Rules(unittest.TestCase):
    def test_error_is_a_value_error(self):
        with self.assertRaises(ValueError):
            run(vector("wrong key"))

    def test_now_defaults_to_the_clock(self):
        v = vector("valid delivery")
        with self.assertRaisesRegex(cv.VerificationError, "expired"):
            cv.verify(v["method"], v["headers"], v["keys"], v["tag"])
        self.assertLess(v["now"], time.time())

    def test_bytes_keys_and_fractional_now(self):
        v = vector("valid delivery")
        keys = {k: s.encode() for k, s in v["keys"].items()}
        r = cv.verify(v["method"], v["headers"], keys, v["tag"], now=v["now"] + 0.5)
        self.assertEqual(r.key_id, "shop1")
        # expires + 60 s minus a fraction: still valid; the vector's own boundary is refused
        r = vector("expired")
        self.assertEqual(cv.verify(r["method"], r["headers"], r["keys"], r["tag"], now=r["now"] - 0.001).order_id, "ord_0001")

    def test_derived_components_other_than_method(self):
        v = vector("valid delivery")
        h = dict(v["headers"])
        h["Signature-Input"] = [h["Signature-Input"][0].replace('"@method"', '"@method" "@path"')]
        with self.assertRaises(cv.VerificationError) as ctx:
            run(v, h)
        self.assertEqual(ctx.exception.kind, "malformed")

    def test_malformed_never_crashes(self):
        """Every prefix and one-character change of a valid Signature-Input and Signature is a
        VerificationError or a result, never another exception."""
        v = vector("valid delivery")
        for name in ("Signature-Input", "Signature"):
            orig = v["headers"][name][0]
            for i in range(len(orig) + 1):
                for edit in (orig[:i], orig[:i] + "\x00" + orig[i + 1:], orig[:i] + '"' + orig[i:], orig[:i] + "é" + orig[i:]):
                    h = {**v["headers"], name: [edit]}
                    try:
                        run(v, h)
                    except cv.VerificationError:
                        continue
                    self.assertEqual(edit, orig)

    def test_version(self):
        self.assertEqual(cv.__version__, "0.1.0")


if __name__ == "__main__":
    unittest.main()
