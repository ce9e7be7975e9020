# Caddy 2.11 with the cinetpay module, built from this checkout.
#
#   docker build -t caddy-cinetpay .
#   docker run -d --name caddy -p 80:80 -p 443:443 -p 443:443/udp \
#     -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" -v caddy-data:/data -v caddy-config:/config \
#     --env-file cinetpay.env caddy-cinetpay
#
# This file is not built in CI (no Docker engine there). See docs/install.md.

FROM caddy:2.11-builder AS builder

# The Caddy version to build. xcaddy pins it while adding the module, so it must be at least the
# version go.mod requires (github.com/caddyserver/caddy/v2 v2.11.9); a lower one makes `go get`
# fail. The image's own CADDY_VERSION may be lower, and an ENV of the base image overrides an ARG
# of the same name, hence a name of our own.
ARG CINETPAY_CADDY_VERSION=v2.11.9

# The golang base image sets GOTOOLCHAIN=local; go.mod may ask for a newer Go than the image has
# (go 1.26.8). auto lets go fetch that toolchain from the Go proxy.
ENV GOTOOLCHAIN=auto

WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The builder image sets XCADDY_SETCAP=1: the binary may bind ports 80 and 443 without root.
RUN xcaddy build "${CINETPAY_CADDY_VERSION}" \
		--with github.com/caddy-cinetpay/caddy-cinetpay=. \
		--output /usr/bin/caddy

FROM caddy:2.11

COPY --from=builder /usr/bin/caddy /usr/bin/caddy

# The base image runs as root, with XDG_DATA_HOME=/data and XDG_CONFIG_HOME=/config. Here Caddy
# runs as an unprivileged user that owns those two directories: Caddy's data (certificates)
# and the Badger store, by default /data/caddy/cinetpay, kept 0700.
RUN set -eux; \
	addgroup -S -g 10001 caddy; \
	adduser -S -D -H -u 10001 -G caddy -h /data -s /sbin/nologin caddy; \
	mkdir -p /data/caddy/cinetpay /config/caddy; \
	chown -R caddy:caddy /data /config; \
	chmod 0700 /data/caddy/cinetpay; \
	setcap cap_net_bind_service=+ep /usr/bin/caddy; \
	caddy list-modules | grep -qx 'http.handlers.cinetpay'

USER caddy

# EXPOSE (80, 443, 443/udp, 2019), WORKDIR /srv and
# CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
# come from the base image.
