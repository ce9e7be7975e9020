<?php
// Verifies the signed headers caddy-cinetpay sends to a shop: RFC 9421 HTTP Message Signatures
// with hmac-sha256 under the label "cinetpay" (the project's README, "2. Deliveries", "3. The
// return page" and "Verifying the signature in your language"). No dependency beyond PHP 8.1's
// defaults; the rules are those of the module's Go verifier, httpsig.Verifier, and the shared
// test vectors keep them equal.
//
//   use CaddyCinetpay\Verifier;
//   try {
//       $r = Verifier\verify_request(['shop1' => $key], Verifier\TAG_NOTIFY);
//   } catch (Verifier\VerificationError $e) { /* answer 401 */ }
//   // compare $r->orderId, $r->amount, $r->currency with your order; apply $r->eventId once
declare(strict_types=1);

namespace CaddyCinetpay\Verifier;

const VERSION = '0.1.0';
const LABEL = 'cinetpay';
const ALGORITHM = 'hmac-sha256';
const TAG_NOTIFY = 'cinetpay-notify'; // deliveries
const TAG_RETURN = 'cinetpay-return'; // return pages
const SKEW = 60; // seconds of clock skew allowed on created and expires
const REQUIRED = ['@method', 'cinetpay-transaction-id', 'cinetpay-order-id', 'cinetpay-status',
    'cinetpay-amount', 'cinetpay-currency', 'cinetpay-environment'];

/**
 * The message is refused. $kind is 'missing' (no "cinetpay" signature), 'malformed' (the headers
 * do not parse, or use what the scheme does not allow) or 'invalid' (a rule is broken: key id,
 * tag, coverage, time, environment, MAC). The message never holds a key.
 */
final class VerificationError extends \UnexpectedValueException
{
    public function __construct(public readonly string $kind, string $message)
    {
        parent::__construct($message);
    }
}

/**
 * What a verified message says. Values are as sent: the module percent-encodes any byte that is
 * not printable ASCII, and '%' (rawurldecode to display them).
 */
final class Result
{
    public function __construct(
        public readonly string $transactionId,
        public readonly string $orderId,
        public readonly string $status,
        public readonly string $amount,
        public readonly string $currency,
        public readonly string $paymentMethod,
        public readonly string $operatorId,
        public readonly string $paymentDate,
        public readonly string $environment,
        public readonly string $eventId, // deliveries: apply each event id once
        public readonly string $keyId,
        public readonly string $nonce,
        public readonly int $created,
        public readonly int $expires,
    ) {
    }
}

// ---- RFC 8941 (Structured Field Values): what Signature-Input and Signature use. Items are
// ['t' => type, 'v' => value] (string, token, integer, decimal, bytes, boolean); a member is
// ['list' => [[item, params], ...]] or ['item' => item], with 'params' => [key => item].

/** @internal */
function parse_dictionary(string $s): array
{
    $i = 0;
    $n = strlen($s);
    $fail = function (string $what) use (&$i): never {
        throw new VerificationError('malformed', "malformed structured field: $what at offset $i");
    };
    $skip = function (string $chars) use ($s, $n, &$i): void {
        while ($i < $n && strpos($chars, $s[$i]) !== false) {
            $i++;
        }
    };
    $match = function (string $re) use ($s, &$i): ?string {
        return preg_match($re . 'A', $s, $m, 0, $i) ? $m[0] : null;
    };
    $key = function () use ($match, $fail, &$i): string {
        $k = $match('/[a-z*][a-z0-9_\-.*]*/') ?? $fail('bad key');
        $i += strlen($k);
        return $k;
    };
    $item = function () use ($s, $n, $match, $fail, &$i): array {
        $c = $s[$i] ?? '';
        if ($c === '"') {
            $v = '';
            for ($i++; $i < $n; $i++) {
                if ($s[$i] === '"') {
                    $i++;
                    return ['t' => 'string', 'v' => $v];
                }
                if ($s[$i] === '\\') {
                    $i++;
                    if (($s[$i] ?? '') !== '"' && ($s[$i] ?? '') !== '\\') {
                        $fail('bad escape');
                    }
                } elseif (ord($s[$i]) < 0x20 || ord($s[$i]) > 0x7e) {
                    $fail('bad string character');
                }
                $v .= $s[$i];
            }
            $fail('unterminated string');
        }
        if ($c !== '' && strpos('-0123456789', $c) !== false) {
            $num = $match('/-?[0-9]+(\.[0-9]*)?/') ?? $fail('bad number');
            $i += strlen($num);
            [$int, $frac] = array_pad(explode('.', ltrim($num, '-'), 2), 2, null);
            if ($frac === null) {
                return strlen($int) <= 15 ? ['t' => 'integer', 'v' => (int)$num] : $fail('bad number');
            }
            if (strlen($int) > 12 || strlen($frac) < 1 || strlen($frac) > 3) {
                $fail('bad number');
            }
            return ['t' => 'decimal', 'v' => $num];
        }
        if ($c === ':') {
            $end = strpos($s, ':', $i + 1);
            $b64 = $end === false ? '' : substr($s, $i + 1, $end - $i - 1);
            $bytes = $end === false || strlen($b64) % 4 || !preg_match('~^[A-Za-z0-9+/]*={0,2}$~D', $b64)
                ? false : base64_decode($b64, true);
            if ($bytes === false) {
                $fail('bad byte sequence');
            }
            $i = $end + 1;
            return ['t' => 'bytes', 'v' => $bytes];
        }
        if ($c === '?' && in_array($s[$i + 1] ?? '', ['0', '1'], true)) {
            $i += 2;
            return ['t' => 'boolean', 'v' => $s[$i - 1] === '1'];
        }
        $tok = $match('~[A-Za-z*][A-Za-z0-9!#$%&\'*+\-.^_`|\~:/]*~') ?? $fail('bad item');
        $i += strlen($tok);
        return ['t' => 'token', 'v' => $tok];
    };
    $params = function () use ($s, $key, $item, $skip, &$i): array {
        $p = []; // a repeated key keeps its first position and its last value
        while (($s[$i] ?? '') === ';') {
            $i++;
            $skip(' ');
            $k = $key();
            $v = ['t' => 'boolean', 'v' => true];
            if (($s[$i] ?? '') === '=') {
                $i++;
                $v = $item();
            }
            $p[$k] = $v;
        }
        return $p;
    };

    $out = [];
    $skip(' ');
    while ($i < $n) {
        $k = $key();
        if (substr($s, $i, 2) === '=(') {
            $i += 2;
            $m = ['list' => []];
            while (true) {
                $skip(' ');
                if (($s[$i] ?? '') === ')') {
                    $i++;
                    break;
                }
                if ($i >= $n) {
                    $fail('unterminated inner list');
                }
                $m['list'][] = [$item(), $params()];
                if (!in_array($s[$i] ?? '', [' ', ')'], true)) {
                    $fail("expected ' ' or ')'");
                }
            }
        } elseif (($s[$i] ?? '') === '=') {
            $i++;
            $m = ['item' => $item()];
        } else {
            $m = ['item' => ['t' => 'boolean', 'v' => true]];
        }
        $m['params'] = $params();
        $out[$k] = $m; // a later duplicate replaces an earlier one
        $skip(" \t");
        if ($i >= $n) {
            break;
        }
        if ($s[$i] !== ',') {
            $fail("expected ','");
        }
        $i++;
        $skip(" \t");
        if ($i >= $n) {
            $fail("trailing ','");
        }
    }
    return $out;
}

/** @internal */
function serialize_item(array $it): string
{
    return match ($it['t']) {
        'string' => '"' . addcslashes($it['v'], '"\\') . '"',
        'integer' => (string)$it['v'],
        'bytes' => ':' . base64_encode($it['v']) . ':',
        'boolean' => $it['v'] ? '?1' : '?0',
        default => $it['v'], // token, decimal: as written
    };
}

/** @internal */
function serialize_params(array $params): string
{
    $out = '';
    foreach ($params as $k => $v) {
        $out .= ($v['t'] === 'boolean' && $v['v']) ? ";$k" : ";$k=" . serialize_item($v);
    }
    return $out;
}

// ---- headers

/**
 * The request's headers from $_SERVER (or a server array like it) for verify(): 'HTTP_CINETPAY_ORDER_ID'
 * becomes 'cinetpay-order-id'. PHP maps '-' and '_' to one key, so the names of $rawHeaders
 * (getallheaders()) spelled with '_' are added as they are: verify() refuses such a Cinetpay_*
 * header, whose value $_SERVER may hold under a Cinetpay-* name. Repeated lines of one header
 * arrive in $_SERVER joined with ", ".
 *
 * @param array<string, mixed> $server
 * @param array<string, string> $rawHeaders
 * @return array<string, string>
 */
function server_headers(array $server, array $rawHeaders = []): array
{
    $h = [];
    foreach ($server as $k => $v) {
        if (is_string($k) && str_starts_with($k, 'HTTP_') && is_string($v)) {
            $h[strtolower(str_replace('_', '-', substr($k, 5)))] = $v;
        }
    }
    foreach ($rawHeaders as $name => $v) {
        if (is_string($name) && str_contains($name, '_')) {
            $h[strtolower($name)] = is_string($v) ? $v : '';
        }
    }
    return $h;
}

/**
 * verify() with this request: $_SERVER['REQUEST_METHOD'], server_headers($_SERVER, getallheaders()).
 * $server and $rawHeaders replace $_SERVER and getallheaders().
 *
 * @param array<string, string> $keys
 */
function verify_request(
    array $keys,
    string $tag,
    bool $acceptSandbox = false,
    int|float|null $now = null,
    ?array $server = null,
    ?array $rawHeaders = null,
): Result {
    $server ??= $_SERVER;
    $rawHeaders ??= function_exists('getallheaders') ? (getallheaders() ?: []) : [];
    return verify((string)($server['REQUEST_METHOD'] ?? ''), server_headers($server, $rawHeaders), $keys, $tag,
        $acceptSandbox, $now);
}

/**
 * Lower-case name => lines.
 *
 * @internal
 * @return array<string, list<string>>
 */
function header_lines(array $headers): array
{
    $out = [];
    foreach ($headers as $name => $value) {
        foreach (is_array($value) ? $value : [$value] as $line) {
            if (!is_string($line)) {
                throw new VerificationError('malformed', "header $name is not text");
            }
            $out[strtolower((string)$name)][] = $line;
        }
    }
    return $out;
}

/**
 * A header field's value: its lines trimmed and joined with ", " (RFC 9421 §2.1).
 *
 * @internal
 */
function field_value(array $h, string $name): string
{
    if (!isset($h[$name])) {
        throw new VerificationError('invalid', "covered header $name is missing");
    }
    $value = implode(', ', array_map(fn(string $l): string => trim($l, " \t"), $h[$name]));
    if (!preg_match('/^[\x20-\x7e]*$/D', $value)) {
        throw new VerificationError('malformed', "header $name is not printable ASCII");
    }
    return $value;
}

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
 * @param string $method the request's method
 * @param array<string, string|list<string>> $headers name (any case) => value or lines
 * @param array<string, string> $keys key id => key (several let you rotate)
 * @param string $tag TAG_NOTIFY for deliveries, TAG_RETURN for return pages
 * @param bool $acceptSandbox accept Cinetpay-Environment "sandbox" (development only)
 * @param int|float|null $now Unix seconds, default the current time
 */
function verify(
    string $method,
    array $headers,
    array $keys,
    string $tag,
    bool $acceptSandbox = false,
    int|float|null $now = null,
): Result {
    $now ??= microtime(true);
    $h = header_lines($headers);
    if (!isset($h['signature-input'], $h['signature'])) {
        throw new VerificationError('missing', 'no Signature-Input or Signature header');
    }
    $in = parse_dictionary(implode(', ', $h['signature-input']))[LABEL] ?? null;
    $sig = parse_dictionary(implode(', ', $h['signature']))[LABEL] ?? null;
    if ($in === null || $sig === null) {
        throw new VerificationError('missing', 'no "' . LABEL . '" label');
    }
    if (!isset($in['list'])) {
        throw new VerificationError('malformed', 'Signature-Input ' . LABEL . ' is not an inner list');
    }
    if (!isset($sig['item']) || $sig['item']['t'] !== 'bytes') {
        throw new VerificationError('malformed', 'Signature ' . LABEL . ' is not a byte sequence');
    }

    $types = ['created' => 'integer', 'expires' => 'integer', 'keyid' => 'string', 'alg' => 'string',
        'nonce' => 'string', 'tag' => 'string'];
    $p = [];
    foreach ($in['params'] as $k => $v) {
        if (!isset($types[$k])) {
            continue;
        }
        if ($v['t'] !== $types[$k]) {
            throw new VerificationError('malformed', "$k is not of type {$types[$k]}");
        }
        // the algorithm is never taken from the message: HMAC-SHA256, any other alg refused
        if ($k === 'alg' && $v['v'] !== ALGORITHM) {
            throw new VerificationError('invalid', 'alg "' . $v['v'] . '" is not ' . ALGORITHM);
        }
        $p[$k] = $v['v'];
    }
    if ($tag === '' || ($p['tag'] ?? null) !== $tag) {
        throw new VerificationError('invalid', 'tag "' . ($p['tag'] ?? '') . "\", want \"$tag\"");
    }
    $keyId = $p['keyid'] ?? '';
    $key = $keyId === '' ? null : ($keys[$keyId] ?? null);
    if (!is_string($key) || $key === '') {
        throw new VerificationError('invalid', "unknown keyid \"$keyId\"");
    }
    if (!isset($p['created'], $p['expires'])) {
        throw new VerificationError('invalid', 'created and expires are required');
    }
    if ($p['created'] > $now + SKEW) {
        throw new VerificationError('invalid', 'created in the future');
    }
    if ($now >= $p['expires'] + SKEW) {
        throw new VerificationError('invalid', 'expired');
    }

    $covered = [];
    foreach ($in['list'] as [$it]) {
        if ($it['t'] === 'string') {
            $covered[$it['v']] = true;
        }
    }
    foreach ($tag === TAG_NOTIFY ? [...REQUIRED, 'cinetpay-event-id'] : REQUIRED as $c) {
        if (!isset($covered[$c])) {
            throw new VerificationError('invalid', "$c is not covered");
        }
    }
    $names = array_map('strval', array_keys($h));
    sort($names, SORT_STRING);
    foreach ($names as $name) {
        if (str_starts_with(str_replace('_', '-', $name), 'cinetpay-') && !isset($covered[$name])) {
            throw new VerificationError('invalid', "header $name is not covered");
        }
    }

    // the signature base of RFC 9421 §2.5, over the covered components as listed
    $base = '';
    $seen = [];
    foreach ($in['list'] as [$it, $itParams]) {
        if ($it['t'] !== 'string') {
            throw new VerificationError('malformed', 'component identifier is not a string');
        }
        if ($itParams) {
            throw new VerificationError('malformed', 'component parameters are not supported');
        }
        $name = $it['v'];
        if ($name === '' || $name !== strtolower($name) || $name === '@signature-params' || isset($seen[$name])) {
            throw new VerificationError('malformed', "bad or repeated component \"$name\"");
        }
        $seen[$name] = true;
        if ($name === '@method') {
            $value = $method;
        } elseif ($name[0] === '@') {
            throw new VerificationError('malformed', "derived component $name is not supported");
        } else {
            $value = field_value($h, $name);
        }
        $base .= serialize_item($it) . ": $value\n";
    }
    $list = implode(' ', array_map(fn(array $c): string => serialize_item($c[0]) . serialize_params($c[1]), $in['list']));
    $base .= "\"@signature-params\": ($list)" . serialize_params($in['params']);
    if (!hash_equals(hash_hmac('sha256', $base, $key, true), $sig['item']['v'])) {
        throw new VerificationError('invalid', 'signature does not match');
    }

    $get = fn(string $name): string => isset($h[$name]) ? field_value($h, $name) : '';
    $r = new Result(
        transactionId: $get('cinetpay-transaction-id'),
        orderId: $get('cinetpay-order-id'),
        status: $get('cinetpay-status'),
        amount: $get('cinetpay-amount'),
        currency: $get('cinetpay-currency'),
        paymentMethod: $get('cinetpay-payment-method'),
        operatorId: $get('cinetpay-operator-id'),
        paymentDate: $get('cinetpay-payment-date'),
        environment: $get('cinetpay-environment'),
        eventId: $get('cinetpay-event-id'),
        keyId: $keyId,
        nonce: $p['nonce'] ?? '',
        created: $p['created'],
        expires: $p['expires'],
    );
    if ($r->environment === 'sandbox') {
        if (!$acceptSandbox) {
            throw new VerificationError('invalid', 'sandbox result refused');
        }
    } elseif ($r->environment !== 'live') {
        throw new VerificationError('invalid', "environment \"{$r->environment}\"");
    }
    if ($tag === TAG_NOTIFY && $r->eventId === '') {
        throw new VerificationError('invalid', 'empty event id');
    }
    return $r;
}
