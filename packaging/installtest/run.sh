#!/usr/bin/env bash
# The install test (make test-install): builds the packages of this tree
# and a newer version, signs two apt repositories with a throwaway key,
# lints every package, checks the unit's offline exposure, builds a Debian
# bookworm rootfs and runs install_test.go, which boots it with systemd as
# PID 1 (systemd-nspawn) in a network namespace of its own (loopback only).
# Every step prints its time; the whole runs from nothing (CI: a fresh
# machine), caching nothing between runs.
#
# Settings: INSTALLTEST_DIR (work dir, default a new one under /var/tmp,
# removed afterwards unless INSTALLTEST_KEEP=1), INSTALLTEST_RUN (a -run
# pattern for the Go test).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

if [ "$(id -u)" != 0 ]; then
	echo "test-install: run as root (it builds a rootfs and boots it)" >&2
	exit 1
fi
for tool in mmdebstrap systemd-nspawn systemd-analyze dpkg-deb apt-ftparchive gpg lintian unshare nsenter ip prosody qemu-arm-static qemu-aarch64-static; do
	command -v "$tool" >/dev/null || { echo "test-install: $tool is missing (.ci/run installs it)" >&2; exit 1; }
done

work=${INSTALLTEST_DIR:-$(mktemp -d /var/tmp/waxmpp-installtest.XXXXXX)}
mkdir -p "$work"
if [ "${INSTALLTEST_KEEP:-}" != 1 ]; then
	trap 'rm -rf "$work"' EXIT
fi
begin=$(date +%s)
since() { echo $(($(date +%s) - $1)); }

# The rootfs comes from Debian's mirror (mmdebstrap's default); it builds
# while the packages do. procps: ps in the test.
start=$(date +%s)
(nice mmdebstrap --quiet --variant=minbase --include=systemd,systemd-sysv,ca-certificates,procps \
	bookworm "$work/rootfs" >"$work/mmdebstrap.log" 2>&1; echo $? >"$work/mmdebstrap.rc"; date +%s >"$work/mmdebstrap.end") &
mm=$!

# The unit's exposure, offline.
exposure=$(systemd-analyze security --offline=yes --no-pager systemd/waxmpp.service 2>&1 |
	sed -n 's/.*Overall exposure level for waxmpp.service: \([0-9.]*\).*/\1/p')
echo "EXPOSURE offline: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.2) }' || {
	echo "test-install: offline exposure '$exposure' is above 1.2" >&2
	exit 1
}

# A throwaway signing key.
export GNUPGHOME="$work/gnupg"
install -d -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'waxmpp install test <install-test@waxmpp.invalid>' ed25519 sign never
key=$(gpg --batch --with-colons --list-keys | awk -F: '$1 == "fpr" { print $10; exit }')

url=file:/srv/apt/waxmpp
v1=$(sh packaging/version.sh)
v2="$v1+upgradetest"
start=$(date +%s)
APT_URL=$url APT_KEY=$key APT_REPO="$work/repo1" DEB_VERSION=$v1 nice bash packaging/apt-repo.sh >/dev/null
echo "TIMING packages $v1 (3 arches) + repository: $(since $start)s"
start=$(date +%s)
cp -a "$work/repo1" "$work/repo2"
APT_URL=$url APT_KEY=$key APT_REPO="$work/repo2" DEB_VERSION=$v2 DEB_TAGS=upgradetest DEB_ARCHES=amd64 \
	nice bash packaging/apt-repo.sh >/dev/null
echo "TIMING package $v2 (amd64, one migration more) + repository: $(since $start)s"

# The setup test's package: a test build (-tags simwa) whose WhatsApp is
# the simulated one, so that the test can play the phone.
start=$(date +%s)
APT_URL=$url APT_KEY=$key APT_REPO="$work/repo3" DEB_VERSION=$v1 DEB_TAGS=simwa DEB_ARCHES=amd64 \
	nice bash packaging/apt-repo.sh >/dev/null
echo "TIMING package $v1 -tags simwa (amd64) + repository: $(since $start)s"

start=$(date +%s)
lintian --fail-on error,warning "$work"/repo2/pool/main/w/waxmpp/*.deb
echo "TIMING lintian (4 packages, no error or warning): $(since $start)s"

# Each package carries the binary for its architecture, static, and it
# runs there: arm64 and armhf under qemu-user, armhf on an ARMv6 CPU (the
# Pi Zero/1's ARM1176).
start=$(date +%s)
for deb in "$work"/repo1/pool/main/w/waxmpp/waxmpp_*.deb; do
	arch=$(dpkg-deb -f "$deb" Architecture)
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/waxmpp >"$work/waxmpp-$arch"
	chmod +x "$work/waxmpp-$arch"
	info=$(go version -m "$work/waxmpp-$arch")
	case $arch in
	amd64) want="GOARCH=amd64" run="" ;;
	arm64) want="GOARCH=arm64" run="qemu-aarch64-static" ;;
	armhf) want="GOARM=6" run="qemu-arm-static -cpu arm1176" ;;
	esac
	if ! grep -q "build.*$want\b" <<<"$info" || ! grep -q "build.*CGO_ENABLED=0" <<<"$info"; then
		echo "test-install: $deb: not a static $want binary:" >&2
		echo "$info" >&2
		exit 1
	fi
	out=$($run "$work/waxmpp-$arch" version)
	case $out in
	"waxmpp $v1 "*) echo "$arch: $out" ;;
	*) echo "test-install: $deb: waxmpp version said '$out'" >&2; exit 1 ;;
	esac
done
echo "TIMING binaries checked (qemu-user for arm64, armhf on ARMv6): $(since $start)s"

start=$(date +%s)
go test -c -tags installtest -o "$work/installtest.test" ./packaging/installtest
echo "TIMING test binary: $(since $start)s"

wait $mm || true
if [ "$(cat "$work/mmdebstrap.rc")" != 0 ]; then
	cat "$work/mmdebstrap.log" >&2
	echo "test-install: mmdebstrap failed" >&2
	exit 1
fi
echo "TIMING rootfs (mmdebstrap, beside the builds): $(($(cat "$work/mmdebstrap.end") - begin))s"
start=$(date +%s)
cp -a "$work/rootfs" "$work/rootfs-setup"
echo "TIMING rootfs copy for TestSetup: $(since $start)s"

# A network namespace with only loopback: Prosody, the test and the booted
# machine share it, and nothing leaves it.
cd "$work"
unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh \
	./installtest.test -test.v -test.count=1 -test.timeout=20m ${INSTALLTEST_RUN:+-test.run "$INSTALLTEST_RUN"} \
	-rootfs "$work/rootfs" -repo1 "$work/repo1" -repo2 "$work/repo2" \
	-setup-rootfs "$work/rootfs-setup" -repo3 "$work/repo3"
echo "TIMING test-install total: $(since $begin)s"
