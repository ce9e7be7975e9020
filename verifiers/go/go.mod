module github.com/caddy-cinetpay/caddy-cinetpay/verifiers/go

go 1.26
