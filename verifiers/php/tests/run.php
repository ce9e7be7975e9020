<?php
// Tests of the verifier, with plain php (no PHPUnit): the shared vectors (../../testdata/vectors.json,
// generated and checked against the Go reference by the repository's verifiers/vectors_test.go),
// then PHP's own cases. Run: php tests/run.php — exits 1 on any failure.
declare(strict_types=1);

require __DIR__ . '/../src/verifier.php';

use CaddyCinetpay\Verifier;
use CaddyCinetpay\Verifier\VerificationError;

$failures = 0;
$count = 0;

function check(bool $ok, string $what): void
{
    global $failures, $count;
    $count++;
    if (!$ok) {
        $failures++;
        fwrite(STDERR, "FAIL: $what\n");
    }
}

/** Runs $f and returns the VerificationError it throws, or null; any other throwable fails. */
function refusal(callable $f, string $what): ?VerificationError
{
    try {
        $f();
        return null;
    } catch (VerificationError $e) {
        return $e;
    } catch (Throwable $e) {
        check(false, "$what: " . get_class($e) . ': ' . $e->getMessage());
        return null;
    }
}

function result_array(Verifier\Result $r): array
{
    $out = [];
    foreach (get_object_vars($r) as $k => $v) {
        $out[strtolower(preg_replace('/[A-Z]/', '_$0', $k))] = $v;
    }
    return $out;
}

$vectors = json_decode(file_get_contents(__DIR__ . '/../../testdata/vectors.json'), true, 512, JSON_THROW_ON_ERROR)['vectors'];
$byName = array_column($vectors, null, 'name');
$run = fn(array $v, ?array $headers = null, int|float|null $now = null) => Verifier\verify($v['method'],
    $headers ?? $v['headers'], $v['keys'], $v['tag'], $v['accept_sandbox'], $now ?? $v['now']);

// ---- the shared vectors
check(count($vectors) > 10, 'vectors loaded');
foreach ($vectors as $v) {
    $name = $v['name'];
    if (isset($v['result'])) {
        try {
            $got = result_array($run($v));
            check($got === $v['result'], "$name: got " . json_encode($got) . ', want ' . json_encode($v['result']));
        } catch (Throwable $e) {
            check(false, "$name: " . $e->getMessage());
        }
        continue;
    }
    $e = refusal(fn() => $run($v), $name);
    check($e !== null && $e->kind === $v['error'], "$name: got " . ($e ? "{$e->kind}: {$e->getMessage()}" : 'verified') . ", want {$v['error']}");
    foreach ($v['keys'] as $key) {
        check($e === null || $key === '' || !str_contains($e->getMessage(), $key), "$name: a key in the error");
    }
}

// ---- $_SERVER, as PHP hands headers over
function server_of(array $v): array
{
    $server = ['REQUEST_METHOD' => $v['method'], 'REQUEST_URI' => '/cinetpay/webhook', 'HTTPS' => 'off'];
    foreach ($v['headers'] as $name => $lines) {
        $server['HTTP_' . strtoupper(str_replace('-', '_', $name))] = implode(', ', $lines);
    }
    return $server;
}

$valid = $byName['valid delivery'];
$server = server_of($valid);
check(Verifier\server_headers($server)['cinetpay-order-id'] === 'ord_0001', 'server_headers maps HTTP_CINETPAY_ORDER_ID');
$r = Verifier\verify_request($valid['keys'], Verifier\TAG_NOTIFY, false, $valid['now'], $server, []);
check($r->orderId === 'ord_0001' && $r->eventId === 'evt_0001' && $r->keyId === 'shop1', 'verify_request from $_SERVER');
$ret = $byName['valid return page'];
check(Verifier\verify_request($ret['keys'], Verifier\TAG_RETURN, false, $ret['now'], server_of($ret), [])->status === 'PENDING',
    'verify_request of a return page');
// Cinetpay_Status lands on HTTP_CINETPAY_STATUS: only getallheaders() shows the '_'
$tampered = $byName['uncovered Cinetpay_ header'];
$server = server_of($byName['tampered status']);
$e = refusal(fn() => Verifier\verify_request($tampered['keys'], Verifier\TAG_NOTIFY, false, $tampered['now'], $server,
    ['Cinetpay_Status' => 'ACCEPTED', 'Cinetpay-Order-Id' => 'ord_0001']), 'underscore');
check($e !== null && $e->kind === 'invalid' && str_contains($e->getMessage(), 'cinetpay_status'), 'a Cinetpay_ header seen by getallheaders() is refused');
$server = server_of($valid);
$server['HTTP_CINETPAY_REFUND'] = 'none';
$e = refusal(fn() => Verifier\verify_request($valid['keys'], Verifier\TAG_NOTIFY, false, $valid['now'], $server, []), 'extra');
check($e !== null && $e->kind === 'invalid', 'an uncovered HTTP_CINETPAY_ key is refused');
$e = refusal(fn() => Verifier\verify_request($valid['keys'], Verifier\TAG_NOTIFY, false, null, server_of($valid), []), 'clock');
check($e !== null && $e->getMessage() === 'expired', 'now defaults to the clock');
check($e instanceof UnexpectedValueException, 'VerificationError is an UnexpectedValueException');
$expired = $byName['expired'];
check($run($expired, null, $expired['now'] - 0.001)->orderId === 'ord_0001', 'fractional now');

// ---- header shapes and bad input
$upper = [];
foreach ($valid['headers'] as $k => $lines) {
    $upper[strtoupper($k)] = $lines[0];
}
check($run($valid, $upper)->amount === '5000', 'names in any case, values as strings');
foreach ([['Cinetpay-Amount' => [5000]], ['Cinetpay-Amount' => null], ['Signature' => [['x']]]] as $i => $bad) {
    $e = refusal(fn() => $run($valid, array_replace($valid['headers'], $bad)), "bad header $i");
    check($e !== null && $e->kind === 'malformed', "bad header value $i is malformed");
}
$h = $valid['headers'];
$h['Signature-Input'] = [str_replace('"@method"', '"@method" "@path"', $h['Signature-Input'][0])];
$e = refusal(fn() => $run($valid, $h), '@path');
check($e !== null && $e->kind === 'malformed', 'only @method among derived components');
$h = $valid['headers'];
$h['Cinetpay-Amount'] = ["5000\n"];
$e = refusal(fn() => $run($valid, $h), 'newline');
check($e !== null && $e->kind === 'malformed', 'a value ending in a newline is not printable');

// every prefix and one-byte change of a valid Signature-Input and Signature: an answer, never a crash
set_error_handler(function (int $no, string $msg): bool {
    throw new ErrorException($msg, 0, $no);
});
foreach (['Signature-Input', 'Signature'] as $name) {
    $orig = $valid['headers'][$name][0];
    for ($i = 0; $i <= strlen($orig); $i++) {
        foreach ([substr($orig, 0, $i), substr($orig, 0, $i) . "\0" . substr($orig, $i + 1),
                     substr($orig, 0, $i) . '"' . substr($orig, $i), substr($orig, 0, $i) . "\xc3\xa9" . substr($orig, $i)] as $edit) {
            $h = $valid['headers'];
            $h[$name] = [$edit];
            $e = refusal(fn() => $run($valid, $h), "$name edited at $i");
            check($e !== null || $edit === $orig, "$name edited at $i verified");
        }
    }
}
restore_error_handler();

check(Verifier\VERSION === json_decode(file_get_contents(__DIR__ . '/../composer.json'), true)['version'], 'VERSION is composer.json\'s');

printf("%d checks, %d failed\n", $count, $failures);
exit($failures ? 1 : 0);
