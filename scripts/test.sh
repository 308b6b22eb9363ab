#!/usr/bin/env bash
# scripts/test.sh: the whole ringdns test suite, as CI runs it.
#
# It installs what the tests need on a Debian machine when it is missing
# (knotd for the conformance test, kdig for the end-to-end tests, iproute2
# for the AF_XDP tests in network namespaces), then vets and runs every test
# with the race detector. Run it as root: the AF_XDP and namespace tests need
# CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF, and skip (saying why) without them,
# except with CI=true, where a skip would hide a lost check and fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in knotd:knot kdig:knot-dnsutils kxdpgun:knot-dnsutils dnsperf:dnsperf \
            nsd:nsd ip:iproute2 ethtool:ethtool ping:iputils-ping delv:bind9-dnsutils dig:bind9-dnsutils drill:ldnsutils \
            ldns-signzone:ldnsutils named:bind9 tsig-keygen:bind9-utils \
            fstrm_capture:fstrm-bin dnstap-ldns:dnstap-ldns dnscap:dnscap tcpdump:tcpdump \
            systemd-analyze:systemd setpriv:util-linux; do
	cmd=${pair%%:*} pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
		need+=("$pkg")
	fi
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "scripts/test.sh: missing Debian packages: ${need[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "scripts/test.sh: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# knot's package starts a knotd service where systemd runs; the tests
	# start their own knotd on loopback ports and need nothing of it.
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go version
# Every Go file in the tree (vendored code aside, should there ever be any)
# must be as gofmt writes it; the unformatted ones are listed and the run
# stops here, before anything slower.
unformatted=$(find . -path ./.git -prune -o -name vendor -prune -o -name '*.go' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
	echo "scripts/test.sh: these files are not gofmt-clean (gofmt -w FILE fixes them):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# ringdns serves over kernel sockets on FreeBSD and macOS too: every package
# must build there (go build), and its tests must compile and vet (go vet
# type-checks the test files as well). It takes seconds; the tests
# themselves run on Linux only.
for goos in freebsd darwin; do
	GOOS=$goos go build ./...
	GOOS=$goos go vet ./...
done
# The benchmark harness's smoke test loads both CPUs with ringperf and
# dnsperf for a minute and a half; it runs on its own afterwards so that its
# load cannot make the timing-bound tests (the conformance exchange, the
# AF_XDP tests) flaky.
go test -race -count=1 -timeout 30m $(go list ./... | grep -v -e '/benchmarks$' -e '/e2e$')
# The end-to-end package runs on its own too: TestUpgradeXDPUnderLoad
# offers the AF_XDP queues half of the rate it measured a moment before and
# allows no drop while an upgrade is under way, and another package's race
# tests starting beside it on the two CPUs once starved the new workers for
# about 300 ms (CI's run of 1444121: 1,827 queries dropped by full RX rings
# in the second after two of the queues resumed, the run's p99 latency
# 296 ms, over ten times the longest pause of its upgrades).
go test -race -count=1 -timeout 30m ./e2e/
go test -count=1 -timeout 10m ./benchmarks/
# Every Go benchmark once, so that the README's benchmark command keeps
# working; the figures of a single iteration mean nothing, and only a
# failure's output is shown.
if ! out=$(go test -run '^$' -bench . -benchtime 1x -count 1 ./zone/ ./dataplane/ ./controlplane/ 2>&1); then
	echo "$out" | grep -v '^Benchmark' >&2
	exit 1
fi
