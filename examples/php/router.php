<?php
// A minimal shop behind Caddy and caddy-cinetpay, in plain PHP (php-cli's default extensions).
// Run with PHP's built-in server, this file as the router:
//
//   php -S 127.0.0.1:9000 examples/php/router.php
//
//   POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
//                            the payment; this shop never talks to CinetPay)
//   POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
//   GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
//   GET  /orders/<id>        the order as the shop holds it (JSON)
//
// Environment: SHOP_DATA (./data/shop-php), SIGNING_KEYS ("id:key,id2:key2"), ACCEPT_SANDBOX ("1"
// accepts results of the CinetPay sandbox). SHOP_PORT is the port given to php -S.
declare(strict_types=1);

const SKEW = 60; // seconds of clock skew allowed on created and expires
const PRODUCTS = [
    'wax' => ['Tissu wax — édition spéciale', 5000],
    'attieke' => ['Attiéké, 1 kg', 1500],
];

function data_dir(): string
{
    $dir = getenv('SHOP_DATA') ?: 'data/shop-php';
    if (!is_dir($dir)) {
        mkdir($dir, 0777, true);
    }
    return $dir;
}

// SIGNING_KEYS is "id1:key1,id2:key2": several keys let the shop rotate (add the new key, switch
// Caddy's signing_key to it, then remove the old one).
function signing_keys(): array
{
    $keys = [];
    foreach (array_filter(array_map('trim', explode(',', (string)getenv('SIGNING_KEYS')))) as $part) {
        [$id, $key] = array_pad(explode(':', $part, 2), 2, '');
        if ($id === '' || $key === '') {
            throw new RuntimeException('SIGNING_KEYS: expected id:key[,id:key]');
        }
        $keys[$id] = $key;
    }
    if (!$keys) {
        throw new RuntimeException('SIGNING_KEYS is required (id:key[,id:key])');
    }
    return $keys;
}

// ---- Signature verification (README, "2. Deliveries": RFC 9421, hmac-sha256, label "cinetpay") ------------------

// Parses an RFC 8941 dictionary, as Signature-Input and Signature are. Items are
// ['t' => type, 'v' => value] (types string, token, integer, decimal, bytes, boolean); a member is
// ['list' => [[item, params], ...]] or ['item' => item], with 'params' => [key => item].
function sf_dictionary(string $s): array
{
    $i = 0;
    $n = strlen($s);
    $fail = function (string $what) use (&$i): never {
        throw new UnexpectedValueException("malformed structured field: $what at $i");
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
                return strlen($int) <= 15 ? ['t' => 'integer', 'v' => (int)$num] : $fail('integer too long');
            }
            if (strlen($int) > 12 || strlen($frac) < 1 || strlen($frac) > 3) {
                $fail('bad decimal');
            }
            return ['t' => 'decimal', 'v' => $num];
        }
        if ($c === ':') {
            $end = strpos($s, ':', $i + 1);
            $b64 = $end === false ? '' : substr($s, $i + 1, $end - $i - 1);
            if ($end === false || !preg_match('~^[A-Za-z0-9+/]*={0,2}$~', $b64) || strlen($b64) % 4) {
                $fail('bad byte sequence');
            }
            $i = $end + 1;
            return ['t' => 'bytes', 'v' => (string)base64_decode($b64, true)];
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
        $out[$k] = $m;
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

function sf_item(array $it): string
{
    return match ($it['t']) {
        'string' => '"' . addcslashes($it['v'], '"\\') . '"',
        'integer' => (string)$it['v'],
        'bytes' => ':' . base64_encode($it['v']) . ':',
        'boolean' => $it['v'] ? '?1' : '?0',
        default => $it['v'], // token, decimal: as written
    };
}

function sf_params(array $params): string
{
    $out = '';
    foreach ($params as $k => $v) {
        $out .= ($v['t'] === 'boolean' && $v['v']) ? ";$k" : ";$k=" . sf_item($v);
    }
    return $out;
}

// Checks the "cinetpay" signature of this request and returns its verified Cinetpay-* values
// (lower-case name => value). Throws UnexpectedValueException with the reason.
//
// PHP hands request headers over in $_SERVER as HTTP_<NAME>, upper-cased with '-' turned into '_':
// "Cinetpay-Order-Id" is $_SERVER['HTTP_CINETPAY_ORDER_ID']. "Cinetpay_Order_Id" lands on the same
// key (the last one sent wins), so a covered component's value is read from that key, and a header
// spelled with '_' (visible through getallheaders()) is refused; Caddy strips both spellings from
// requests it forwards. Repeated lines of one header arrive already joined with ", ".
function verify_signature(string $tag, array $keys, bool $acceptSandbox, ?int $now = null): array
{
    $now ??= time();
    $server = fn(string $name): ?string => $_SERVER['HTTP_' . strtoupper(str_replace('-', '_', $name))] ?? null;
    $input = $server('signature-input');
    $sig = $server('signature');
    if ($input === null || $sig === null) {
        throw new UnexpectedValueException('no Signature-Input or Signature');
    }
    $in = sf_dictionary($input)['cinetpay'] ?? null;
    $sig = sf_dictionary($sig)['cinetpay'] ?? null;
    if ($in === null || $sig === null) {
        throw new UnexpectedValueException('no "cinetpay" signature');
    }
    if (!isset($in['list'])) {
        throw new UnexpectedValueException('Signature-Input cinetpay is not an inner list');
    }
    if (!isset($sig['item']) || $sig['item']['t'] !== 'bytes') {
        throw new UnexpectedValueException('Signature cinetpay is not a byte sequence');
    }

    $types = ['created' => 'integer', 'expires' => 'integer', 'keyid' => 'string', 'alg' => 'string',
        'nonce' => 'string', 'tag' => 'string'];
    $p = [];
    foreach ($in['params'] as $k => $v) {
        if (isset($types[$k])) {
            if ($v['t'] !== $types[$k]) {
                throw new UnexpectedValueException("$k is not a {$types[$k]}");
            }
            $p[$k] = $v['v'];
        }
    }
    // the algorithm is never taken from the message: it is HMAC-SHA256, and any other alg is refused
    if (($p['alg'] ?? 'hmac-sha256') !== 'hmac-sha256') {
        throw new UnexpectedValueException("alg {$p['alg']} refused");
    }
    if (($p['tag'] ?? null) !== $tag) {
        throw new UnexpectedValueException('tag ' . ($p['tag'] ?? '') . ", want $tag");
    }
    $key = $keys[$p['keyid'] ?? ''] ?? null;
    if ($key === null) {
        throw new UnexpectedValueException('unknown keyid ' . ($p['keyid'] ?? ''));
    }
    if (!isset($p['created'], $p['expires'])) {
        throw new UnexpectedValueException('created and expires are required');
    }
    if ($p['created'] > $now + SKEW) {
        throw new UnexpectedValueException('created in the future');
    }
    if ($now >= $p['expires'] + SKEW) {
        throw new UnexpectedValueException('expired');
    }

    // the signature base of RFC 9421 §2.5, over the covered components as listed
    $covered = [];
    $base = '';
    foreach ($in['list'] as [$it, $itParams]) {
        $name = $it['v'];
        if ($it['t'] !== 'string' || $itParams || $name === '' || $name !== strtolower($name)
            || $name === '@signature-params' || isset($covered[$name])) {
            throw new UnexpectedValueException("bad component $name");
        }
        if ($name === '@method') {
            $value = $_SERVER['REQUEST_METHOD'];
        } elseif ($name[0] === '@') {
            throw new UnexpectedValueException("component $name not supported");
        } elseif (($value = $server($name)) === null) {
            throw new UnexpectedValueException("covered header $name missing");
        }
        $value = trim($value, " \t");
        if (!preg_match('/^[\x20-\x7e]*$/', $value)) {
            throw new UnexpectedValueException("header $name is not printable ASCII");
        }
        $covered[$name] = $value;
        $base .= sf_item($it) . ": $value\n";
    }
    $required = ['@method', 'cinetpay-transaction-id', 'cinetpay-order-id', 'cinetpay-status',
        'cinetpay-amount', 'cinetpay-currency', 'cinetpay-environment'];
    if ($tag === 'cinetpay-notify') {
        $required[] = 'cinetpay-event-id';
    }
    foreach ($required as $c) {
        if (!isset($covered[$c])) {
            throw new UnexpectedValueException("$c is not covered");
        }
    }
    foreach (array_keys($_SERVER) as $k) {
        $name = strtolower(str_replace('_', '-', substr((string)$k, 5)));
        if (str_starts_with((string)$k, 'HTTP_CINETPAY_') && !isset($covered[$name])) {
            throw new UnexpectedValueException("header $name is not covered");
        }
    }
    foreach (function_exists('getallheaders') ? array_keys(getallheaders()) : [] as $raw) {
        if (str_contains($raw, '_') && str_starts_with(strtolower(str_replace('_', '-', $raw)), 'cinetpay-')) {
            throw new UnexpectedValueException("header $raw is not covered");
        }
    }
    $list = implode(' ', array_map(fn($c) => sf_item($c[0]) . sf_params($c[1]), $in['list']));
    $base .= "\"@signature-params\": ($list)" . sf_params($in['params']);

    if (!hash_equals(hash_hmac('sha256', $base, $key, true), $sig['item']['v'])) {
        throw new UnexpectedValueException('signature does not match');
    }
    $env = $covered['cinetpay-environment'];
    if ($env !== 'live' && !($env === 'sandbox' && $acceptSandbox)) {
        throw new UnexpectedValueException("environment $env refused");
    }
    if ($tag === 'cinetpay-notify' && $covered['cinetpay-event-id'] === '') {
        throw new UnexpectedValueException('empty event id');
    }
    return $covered;
}

// ---- Store: one JSON file, changed under flock and replaced atomically -------------------------

function store_path(): string
{
    return data_dir() . '/orders.json';
}

// The store, or an empty one when it does not exist yet. Any other read error throws: treating an
// unreadable store as empty would overwrite every order at the next write.
function store_load(): array
{
    $path = store_path();
    clearstatcache(true, $path);
    if (!file_exists($path)) {
        return ['orders' => [], 'events' => []];
    }
    error_clear_last();
    $raw = @file_get_contents($path); // false when it cannot be opened, a short string on a read error
    if ($raw === false || error_get_last() !== null) {
        throw new RuntimeException("cannot read $path: " . (error_get_last()['message'] ?? 'unknown error'));
    }
    return json_decode($raw, true, 512, JSON_THROW_ON_ERROR);
}

// Runs $change on the store under an exclusive lock (other PHP workers wait) and writes the result
// atomically: readers see the old or the new file, never half. Any failure throws (the shop answers
// 500, the module retries) and leaves the store as it was.
function store_update(callable $change): mixed
{
    $lock = fopen(store_path() . '.lock', 'c');
    if ($lock === false) {
        throw new RuntimeException('cannot open ' . store_path() . '.lock');
    }
    try {
        if (!flock($lock, LOCK_EX)) {
            throw new RuntimeException('cannot lock ' . store_path() . '.lock');
        }
        $db = store_load();
        $result = $change($db);
        write_atomic(store_path(), json_encode($db, JSON_PRETTY_PRINT | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR));
        return $result;
    } finally {
        flock($lock, LOCK_UN);
        fclose($lock);
    }
}

// Replaces $path with $data: a temporary file written in full (fwrite may write part of it without
// an error when the disk is full) and synced, renamed over $path, then the directory synced so the
// rename survives a power loss. On any failure the temporary file is removed and this throws.
function write_atomic(string $path, string $data): void
{
    $tmp = $path . '.' . getmypid() . '.tmp';
    $f = @fopen($tmp, 'w');
    if ($f === false) {
        throw new RuntimeException("cannot create $tmp: " . (error_get_last()['message'] ?? 'unknown error'));
    }
    $ok = @fwrite($f, $data) === strlen($data) && @fflush($f) && @fsync($f);
    $ok = @fclose($f) && $ok;
    if (!$ok || !@rename($tmp, $path)) {
        @unlink($tmp);
        throw new RuntimeException("cannot write $path: " . (error_get_last()['message'] ?? 'short write'));
    }
    $dir = @fopen(dirname($path), 'r');
    $synced = $dir !== false && @fsync($dir);
    if ($dir !== false) {
        fclose($dir);
    }
    if (!$synced) {
        throw new RuntimeException('cannot sync the directory of ' . $path);
    }
}

// Applies a verified delivery to its order, together with its event id.
function apply_result(array &$db, array $r): string
{
    $event = $r['cinetpay-event-id'];
    if (isset($db['events'][$event])) {
        return 'already applied';
    }
    $id = $r['cinetpay-order-id'];
    $order = $db['orders'][$id] ?? null;
    if ($order === null) {
        // Acknowledged (2xx) but not recorded: once the order is restored, a replay of this event
        // through Caddy's admin API is applied instead of answered "already applied".
        return 'unknown order: not applied';
    }
    $status = $r['cinetpay-status'];
    $tx = $r['cinetpay-transaction-id'];
    $now = gmdate('c');
    $flag = null;
    if ($r['cinetpay-amount'] !== (string)$order['amount'] || $r['cinetpay-currency'] !== $order['currency']) {
        $note = $flag = "{$r['cinetpay-amount']} {$r['cinetpay-currency']} differs from the order's "
            . "{$order['amount']} {$order['currency']}: recorded for review, not applied";
    } elseif ($status === 'ACCEPTED' && $order['status'] === 'paid' && ($order['transaction_id'] ?? null) !== null
        && $order['transaction_id'] !== $tx) {
        // paid by another transaction: the order keeps its payment, the merchant refunds this one
        $note = $flag = "paid twice: refund $tx";
    } elseif ($status === 'ACCEPTED') {
        $order['status'] = 'paid';
        $order['transaction_id'] = $tx;
        $note = 'order paid';
    } elseif ($status === 'REFUSED' || $status === 'EXPIRED') {
        if ($order['status'] !== 'paid') { // a later ACCEPTED still wins
            $order['status'] = 'payment_failed';
        }
        $note = 'payment ' . strtolower($status);
    } elseif ($status === 'MISMATCH' || $status === 'DUPLICATE') {
        $note = $flag = $status === 'DUPLICATE' ? 'paid twice: refund this transaction' : 'paid another amount: review and refund';
    } else {
        $note = "status $status ignored";
    }
    if ($flag !== null) {
        $order['flags'][] = ['event_id' => $event, 'transaction_id' => $tx, 'status' => $status, 'reason' => $flag, 'at' => $now];
    }
    $order['events'][] = $event;
    $db['orders'][$id] = $order;
    $db['events'][$event] = ['order_id' => $id, 'transaction_id' => $tx, 'status' => $status, 'note' => $note, 'at' => $now];
    return $note;
}

// ---- HTTP ------------------------------------------------------------------------------------------

// Percent-encodes text for a Cinetpay-* header (RFC 3986 unreserved characters stay); the module
// decodes it.
function pct(string $s): string
{
    return rawurlencode($s);
}

function send(int $status, string $body, string $type = 'text/plain; charset=utf-8'): void
{
    http_response_code($status);
    header("Content-Type: $type");
    header('Cache-Control: no-store');
    echo $body;
}

function checkout(): void
{
    $product = $_POST['product'] ?? 'wax';
    if (!is_string($product) || !isset(PRODUCTS[$product])) {
        send(400, "unknown product\n");
        return;
    }
    [$name, $amount] = PRODUCTS[$product];
    $id = 'ord_' . bin2hex(random_bytes(8));
    store_update(function (array &$db) use ($id, $product, $name, $amount) {
        $db['orders'][$id] = ['id' => $id, 'product' => $product, 'description' => $name, 'amount' => $amount,
            'currency' => 'XOF', 'status' => 'awaiting_payment', 'transaction_id' => null, 'events' => [],
            'flags' => [], 'created_at' => gmdate('c')];
    });
    // Caddy replaces this answer with a 303 to CinetPay's payment page (README, "1. Checkout").
    header("Cinetpay-Amount: $amount");
    header("Cinetpay-Order-Id: $id");
    header('Cinetpay-Currency: XOF');
    header('Cinetpay-Description: ' . pct($name));
    header('Cinetpay-Customer-Name: ' . pct('Aya'));
    header('Cinetpay-Customer-Surname: ' . pct('Kouadio'));
    header('Cinetpay-Customer-Email: aya.kouadio@example.test');
    header('Cinetpay-Customer-Phone-Number: +2250700000000');
    header('Cinetpay-Customer-Address: ' . pct('Rue des Jardins'));
    header('Cinetpay-Customer-City: ' . pct('Abidjan'));
    header('Cinetpay-Customer-Country: CI');
    header('Cinetpay-Customer-Zip-Code: 00225');
    header('Cinetpay-Metadata: ' . pct("order=$id"));
    send(200, "order $id created\n");
}

function webhook(): void
{
    try {
        $r = verify_signature('cinetpay-notify', signing_keys(), getenv('ACCEPT_SANDBOX') === '1');
    } catch (UnexpectedValueException $e) {
        error_log('webhook refused: ' . $e->getMessage());
        send(401, 'bad signature: ' . $e->getMessage() . "\n");
        return;
    }
    $note = store_update(fn(array &$db) => apply_result($db, $r));
    error_log("webhook {$r['cinetpay-event-id']} {$r['cinetpay-order-id']} {$r['cinetpay-status']}: $note");
    send(200, "$note\n"); // 2xx: the module stops retrying this event
}

function return_page(): void
{
    $h = fn($s) => htmlspecialchars((string)$s, ENT_QUOTES);
    try {
        $r = verify_signature('cinetpay-return', signing_keys(), getenv('ACCEPT_SANDBOX') === '1');
        $order = store_load()['orders'][$r['cinetpay-order-id']] ?? null;
        $page = "<h1>Order {$h($r['cinetpay-order-id'])}</h1>\n"
            . "<p>Payment: <strong id=\"payment-status\">{$h($r['cinetpay-status'])}</strong> "
            . "({$h($r['cinetpay-amount'])} {$h($r['cinetpay-currency'])})</p>\n"
            . '<p>Order: <strong id="order-status">' . ($order ? $h($order['status']) : 'unknown') . '</strong></p>';
    } catch (UnexpectedValueException $e) {
        $page = "<h1>Payment</h1><p>The payment status could not be verified ({$h($e->getMessage())}).\n"
            . 'Your order page shows the result once it arrives.</p>';
    }
    send(200, "<!doctype html><meta charset=\"utf-8\"><title>Payment</title>\n$page\n", 'text/html; charset=utf-8');
}

function home(): void
{
    $options = '';
    foreach (PRODUCTS as $k => [$name, $amount]) {
        $options .= '<option value="' . $k . '">' . htmlspecialchars($name) . " — $amount XOF</option>";
    }
    send(200, "<!doctype html><meta charset=\"utf-8\"><title>Shop</title>\n<h1>Shop (PHP)</h1>\n"
        . "<form method=\"post\" action=\"/checkout\"><select name=\"product\">$options</select> "
        . "<button>Pay with CinetPay</button></form>\n", 'text/html; charset=utf-8');
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'];
try {
    if ($path === '/' && $method === 'GET') {
        home();
    } elseif ($path === '/checkout' && $method === 'POST') {
        checkout();
    } elseif ($path === '/cinetpay/webhook' && $method === 'POST') {
        webhook();
    } elseif ($path === '/cinetpay/return' && $method === 'GET') {
        return_page();
    } elseif ($method === 'GET' && preg_match('~^/orders/([A-Za-z0-9._-]{1,64})$~', (string)$path, $m)) {
        $order = store_load()['orders'][$m[1]] ?? null;
        $order === null
            ? send(404, "no such order\n")
            : send(200, json_encode($order, JSON_PRETTY_PRINT | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) . "\n", 'application/json');
    } else {
        send(404, "not found\n");
    }
} catch (Throwable $e) {
    // a store error: answer 500 (for a delivery, the module retries it), whatever display_errors says
    error_log('internal error: ' . $e);
    if (!headers_sent()) {
        header_remove();
        send(500, "internal error\n");
    }
}
