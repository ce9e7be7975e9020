<?php
// A minimal shop behind Caddy and caddy-cinetpay, in plain PHP (php-cli's default extensions).
// Run with PHP's built-in server, this file as the router:
//
//   php -S 127.0.0.1:9000 examples/php/router.php
//
//   POST /checkout           creates an order and answers the Cinetpay-* headers (Caddy starts
//                            the payment; this shop never talks to CinetPay)
//   POST /cinetpay/webhook   results delivered by Caddy: verified, compared, applied once
//   POST /cinetpay/standard-webhook  the same, delivered in the Standard Webhooks format
//                            (deliver_format standard-webhooks)
//   GET  /cinetpay/return    the customer's return page: shows the verified status, changes nothing
//   GET  /orders/<id>        the order as the shop holds it (JSON)
//
// Environment: SHOP_DATA (./data/shop-php), SIGNING_KEYS ("id:key,id2:key2"), ACCEPT_SANDBOX ("1"
// accepts results of the CinetPay sandbox), STANDARD_WEBHOOKS_SECRET ("whsec_…", for
// /cinetpay/standard-webhook). SHOP_PORT is the port given to php -S.
declare(strict_types=1);

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

// ---- Signature verification (README, "2. Deliveries"): the verifier of verifiers/php -------------

require_once __DIR__ . '/../../verifiers/php/src/verifier.php';

// Checks the "cinetpay" signature of this request with CaddyCinetpay\Verifier\verify_request (the
// headers from $_SERVER, and getallheaders() to refuse the Cinetpay_* spellings PHP folds into the
// same keys) and returns its verified Cinetpay-* values by lower-case header name, as apply_result
// reads them. Throws UnexpectedValueException (a CaddyCinetpay\Verifier\VerificationError) with
// the reason.
function verify_signature(string $tag, array $keys, bool $acceptSandbox, ?int $now = null): array
{
    $r = CaddyCinetpay\Verifier\verify_request($keys, $tag, $acceptSandbox, $now);
    return ['cinetpay-transaction-id' => $r->transactionId, 'cinetpay-order-id' => $r->orderId,
        'cinetpay-status' => $r->status, 'cinetpay-amount' => $r->amount, 'cinetpay-currency' => $r->currency,
        'cinetpay-payment-method' => $r->paymentMethod, 'cinetpay-operator-id' => $r->operatorId,
        'cinetpay-payment-date' => $r->paymentDate, 'cinetpay-environment' => $r->environment,
        'cinetpay-event-id' => $r->eventId];
}

// ---- Standard Webhooks (README.md, "Standard Webhooks") --------------------------------------------

// Checks a Standard Webhooks delivery as Webhook::verify of the official library
// (standard-webhooks/standard-webhooks) does, and returns its body decoded: webhook-timestamp
// within 5 minutes of now either way, and one of the space-separated "v1,<base64>" signatures
// equal (hash_equals) to HMAC-SHA256("<webhook-id>.<webhook-timestamp>.<body>") with the key of
// the whsec_ secret. Throws UnexpectedValueException with the reason.
function verify_standard_webhook(string $secret, string $body, ?int $now = null): array
{
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
    if ($key === false || $key === '') {
        throw new RuntimeException('STANDARD_WEBHOOKS_SECRET: expected whsec_ and the key in base64');
    }
    [$id, $ts, $sigs] = [$_SERVER['HTTP_WEBHOOK_ID'] ?? '', $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '', $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? ''];
    if ($id === '' || $ts === '' || $sigs === '') {
        throw new UnexpectedValueException('missing webhook-id, webhook-timestamp or webhook-signature');
    }
    if (!preg_match('/^[0-9]{1,18}$/', $ts) || abs(($now ?? time()) - (int)$ts) > 300) {
        throw new UnexpectedValueException('webhook-timestamp invalid, too old or too new');
    }
    $want = base64_encode(hash_hmac('sha256', $id . '.' . (int)$ts . '.' . $body, $key, true));
    foreach (explode(' ', $sigs) as $versioned) {
        [$version, $sig] = array_pad(explode(',', $versioned, 2), 2, '');
        if ($version === 'v1' && hash_equals($want, $sig)) {
            $payload = json_decode($body, true);
            return is_array($payload) ? $payload : throw new UnexpectedValueException('body is not a JSON object');
        }
    }
    throw new UnexpectedValueException('no matching signature');
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

// POST /cinetpay/standard-webhook: a delivery in the Standard Webhooks format, verified, then
// refused, compared and applied once like the webhook's signed headers, with the same answers.
function standard_webhook(): void
{
    $secret = (string)getenv('STANDARD_WEBHOOKS_SECRET');
    if ($secret === '') {
        send(503, "STANDARD_WEBHOOKS_SECRET is not set: Standard Webhooks deliveries cannot be verified\n");
        return;
    }
    try {
        $p = verify_standard_webhook($secret, (string)file_get_contents('php://input'));
        $d = is_array($p['data'] ?? null) ? $p['data'] : [];
        $r = [];
        foreach (['transaction_id', 'order_id', 'status', 'amount', 'currency', 'environment', 'event_id'] as $k) {
            $r['cinetpay-' . str_replace('_', '-', $k)] = is_string($d[$k] ?? null) ? $d[$k] : '';
        }
        if ($r['cinetpay-event-id'] === '' || ($p['type'] ?? null) !== 'payment.' . strtolower($r['cinetpay-status'])) {
            throw new UnexpectedValueException('not a payment result');
        }
        $env = $r['cinetpay-environment'];
        if ($env !== 'live' && !($env === 'sandbox' && getenv('ACCEPT_SANDBOX') === '1')) {
            throw new UnexpectedValueException("environment $env refused");
        }
    } catch (UnexpectedValueException $e) {
        error_log('standard webhook refused: ' . $e->getMessage());
        send(401, 'refused: ' . $e->getMessage() . "\n");
        return;
    }
    $note = store_update(fn(array &$db) => apply_result($db, $r));
    error_log("standard webhook {$r['cinetpay-event-id']} {$r['cinetpay-order-id']} {$r['cinetpay-status']}: $note");
    send(200, "$note\n"); // 2xx: the module stops retrying this event
}

// The pages customers see, in French, readable on a phone; the codes stay in data-status.
function page(string $title, string $body): string
{
    return "<!doctype html><html lang=\"fr\"><meta charset=\"utf-8\">\n"
        . "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>$title</title>\n"
        . '<style>body{margin:0 auto;max-width:34rem;padding:1rem;font:16px/1.5 system-ui,sans-serif}h1{font-size:1.4rem}'
        . "h1,p{overflow-wrap:anywhere}select,button{font:inherit;max-width:100%}</style>\n$body\n";
}

const PAYMENT_WORDS = ['ACCEPTED' => 'accepté', 'REFUSED' => 'refusé', 'PENDING' => 'en attente de confirmation',
    'EXPIRED' => 'expiré', 'MISMATCH' => 'montant différent de la commande (à vérifier)',
    'DUPLICATE' => 'en double (il sera remboursé)'];
const ORDER_WORDS = ['awaiting_payment' => 'en attente de paiement', 'paid' => 'payée',
    'payment_failed' => 'paiement non abouti'];

function return_page(): void
{
    $h = fn($s) => htmlspecialchars((string)$s, ENT_QUOTES);
    try {
        $r = verify_signature('cinetpay-return', signing_keys(), getenv('ACCEPT_SANDBOX') === '1');
        $order = store_load()['orders'][$r['cinetpay-order-id']] ?? null;
        $os = $order['status'] ?? 'unknown';
        $body = "<h1>Commande {$h($r['cinetpay-order-id'])}</h1>\n"
            . "<p>Paiement&nbsp;: <strong id=\"payment-status\" data-status=\"{$h($r['cinetpay-status'])}\">"
            . (PAYMENT_WORDS[$r['cinetpay-status']] ?? 'statut inconnu') . '</strong> '
            . "({$h($r['cinetpay-amount'])} {$h($r['cinetpay-currency'])})</p>\n"
            . "<p>Commande&nbsp;: <strong id=\"order-status\" data-status=\"{$h($os)}\">"
            . (ORDER_WORDS[$os] ?? 'introuvable') . '</strong></p>';
    } catch (UnexpectedValueException $e) {
        error_log('return page not verified: ' . $e->getMessage());
        $body = "<h1>Paiement</h1><p id=\"unverified\">Le statut du paiement n'a pas pu être vérifié.\n"
            . "La page de votre commande affichera le résultat dès qu'il sera arrivé.</p>";
    }
    send(200, page('Paiement', $body), 'text/html; charset=utf-8');
}

function home(): void
{
    $options = '';
    foreach (PRODUCTS as $k => [$name, $amount]) {
        $options .= '<option value="' . $k . '">' . htmlspecialchars($name) . " — $amount XOF</option>";
    }
    send(200, page('Boutique', "<h1>Boutique (PHP)</h1>\n<form method=\"post\" action=\"/checkout\">"
        . "<p><select name=\"product\" aria-label=\"Produit\">$options</select></p>"
        . '<p><button>Payer avec CinetPay</button></p></form>'), 'text/html; charset=utf-8');
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
    } elseif ($path === '/cinetpay/standard-webhook' && $method === 'POST') {
        standard_webhook();
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
