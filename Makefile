# waxmpp — make targets. `make test` is what CI runs (see .ci/run).
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
FUZZTIME    ?= 10s
# Cross targets: name=GOARCH[/GOARM]
TARGETS     := linux-arm64=arm64 linux-armv6=arm/6 linux-armv7=arm/7 linux-amd64=amd64

.PHONY: build cross test test-arm bench bench-arm fuzz lint layout clean deb apt-repo test-install image image-test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/waxmpp ./cmd/waxmpp

cross:
	@mkdir -p dist
	@set -e; for t in $(TARGETS); do \
		name=$${t%%=*}; spec=$${t#*=}; arch=$${spec%%/*}; arm=; \
		case $$spec in */*) arm=$${spec#*/};; esac; \
		echo "waxmpp-$$name"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm \
			$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/waxmpp-$$name ./cmd/waxmpp; \
	done

# The race detector needs cgo; the shipped binaries do not.
test: test-arm
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	CGO_ENABLED=1 $(GO) test -race -tags simwa -count=1 ./cmd/waxmpp/
	WAXMPP_TEST_SERVER=ejabberd CGO_ENABLED=1 $(GO) test -race -tags simwa -count=1 ./cmd/waxmpp/

# The store on 32-bit ARM (a Pi Zero/1 is ARMv6), under qemu-user.
test-arm:
	sh bridge/store/testdata/arm-qemu-test.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./...
	$(GO) test -v -tags simwa -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./cmd/waxmpp/
	WAXMPP_TEST_SERVER=ejabberd $(GO) test -v -tags simwa -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./cmd/waxmpp/
	@$(MAKE) --no-print-directory bench-arm

# The Pi's builds (arm64; ARMv6 for a Pi Zero or 1, CGO_ENABLED=0 as
# shipped) under qemu-user, beside amd64's: disk bytes, commits and
# allocations per message (counts; times under emulation mean nothing).
bench-arm:
	WAXMPP_BENCH_ARCH="amd64 arm64 armv6" $(GO) test -tags simwa -run '^$$' -bench '^BenchmarkSimDiskWrites$$' -benchtime=1x -count=1 -timeout 60m ./cmd/waxmpp/

# A short run of every fuzz target (go test runs one -fuzz target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags simwa ./...
	$(GO) vet -tags simwa ./...
	$(GO) vet -tags imagetest ./image/...
	$(GO) run $(STATICCHECK) -tags imagetest ./image/...
	$(GO) mod tidy -diff
	@$(MAKE) --no-print-directory layout

# The layout stays true: package bridge (the domain) depends on the standard
# library alone, and no package under bridge/ imports an adapter (whatsapp,
# xmpp, store, simwa) except the test harnesses (bridge/*test) and _test
# files (go list's Imports leaves those out). Both builds.
layout:
	@set -e; for tags in "" simwa; do \
		bad=$$($(GO) list -tags "$$tags" -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./bridge | grep -vx waxmpp/bridge || true); \
		if [ -n "$$bad" ]; then echo "layout: package bridge (tags '$$tags') depends on more than the standard library:"; echo "$$bad"; exit 1; fi; \
		bad=$$($(GO) list -tags "$$tags" -f '{{$$p := .ImportPath}}{{range .Imports}}{{$$p}} imports {{.}}{{"\n"}}{{end}}' ./bridge/... | \
			awk '$$1 !~ /test$$/ && $$3 ~ /^waxmpp\/bridge\/(whatsapp|xmpp|store|simwa)$$/'); \
		if [ -n "$$bad" ]; then echo "layout: an adapter imported within bridge/ (tags '$$tags'):"; echo "$$bad"; exit 1; fi; \
	done

clean:
	rm -rf dist
	$(GO) clean -testcache

# Packages and the apt repository (packaging/). Settings, e.g. APT_URL and
# APT_KEY, are described at the top of packaging/deb.sh and apt-repo.sh.
deb:
	bash packaging/deb.sh

apt-repo:
	bash packaging/apt-repo.sh

# Install, run, upgrade and purge the packages on a booted systemd (as root).
test-install:
	bash packaging/installtest/run.sh

# The Raspberry Pi SD image (image/README.md), as root: Debian's packages
# and this checkout's (or, with APT_REPO, that repository's) waxmpp.
IMAGE := dist/waxmpp-$(VERSION)-arm64.img.xz

image:
	image/build.sh $(VERSION)

# Boots $(IMAGE) under qemu-system-aarch64 and checks it (image/boottest).
image-test:
	@test -f $(IMAGE) || { echo "$(IMAGE) is missing: run make image first" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) test -tags imagetest -count=1 -timeout 40m -v ./image/boottest/ -args -image $(abspath $(IMAGE))
