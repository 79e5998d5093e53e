#!/usr/bin/env bash
# Builds dist/waxmpp_VERSION_{amd64,arm64,armhf}.deb from static binaries
# with dpkg-deb, and with APT_URL also waxmpp-apt-source_VERSION_all.deb;
# `make deb` runs it. No debhelper: the maintainer scripts in
# packaging/debian do what dh_installsystemd, dh_installsysusers and
# dh_installtmpfiles would.
#
# Settings (environment):
#   DEB_VERSION     the package version (default: packaging/version.sh)
#   DEB_ARCHES      which of amd64 arm64 armhf (default: all three)
#   DEB_TAGS        extra Go build tags (the install test's newer version)
#   DEB_MAINTAINER  the Maintainer field
#   DEB_OUT         where the packages go (default: dist)
#   APT_URL         where the apt repository is published; when set, with
#   APT_KEYRING     the repository's public key (binary OpenPGP keyring),
#                   waxmpp-apt-source is built too: it ships
#                   /usr/share/keyrings/waxmpp-archive-keyring.gpg and
#                   /etc/apt/sources.list.d/waxmpp.sources (Signed-By), so that
#                   the source stays current and upgrades come with apt upgrade;
#                   waxmpp recommends it (lintian allows apt sources only in a
#                   package named *-apt-source)
#   APT_SUITE       the repository's suite (default: stable)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}

version=${DEB_VERSION:-$(sh packaging/version.sh)}
arches=${DEB_ARCHES:-amd64 arm64 armhf}
maintainer=${DEB_MAINTAINER:-waxmpp developers <waxmpp@example.org>}
out=${DEB_OUT:-dist}
suite=${APT_SUITE:-stable}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

case $version in
[0-9]*) ;;
*) echo "deb.sh: version $version must start with a digit" >&2; exit 2 ;;
esac
if [ -n "${APT_URL:-}" ] && [ ! -s "${APT_KEYRING:-}" ]; then
	echo "deb.sh: APT_URL is set but APT_KEYRING names no keyring file" >&2
	exit 2
fi
example=
for f in bridge/config/example.toml bridge/testdata/config/example.toml; do
	if [ -e "$f" ]; then example=$f; break; fi
done
[ -n "$example" ] || { echo "deb.sh: no example config found" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # GOARCH GOARM OUTPUT
	CGO_ENABLED=0 GOOS=linux GOARCH=$1 GOARM=$2 $GO build -trimpath \
		${DEB_TAGS:+-tags "$DEB_TAGS"} \
		-ldflags "-s -w -X main.version=$version" -o "$3" ./cmd/waxmpp
}

# The man page comes from the help text of a binary for this machine.
build "$($GO env GOARCH)" "" "$work/waxmpp-host"
# (2>&1 and || true: whichever stream and exit status help uses.)
{ "$work/waxmpp-host" help 2>&1 || true; } | $GO run ./packaging/manpage -version "$version" \
	-date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" >"$work/waxmpp.1"

# The changelog: a build of a version not in it gets an entry of its own.
cp packaging/debian/changelog "$work/changelog"
top=$(sed -n '1s/^waxmpp (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$version" != "$top" ]; then
	{
		echo "waxmpp ($version) UNRELEASED; urgency=medium"
		echo
		echo "  * Development build of $(git describe --always --dirty 2>/dev/null || echo "an unknown tree")."
		echo
		echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
		echo
		cat packaging/debian/changelog
	} >"$work/changelog"
fi

# pack ROOT CONTROL ARCH DEB: the control file, md5sums, and the package.
pack() {
	local size
	size=$(du -sk --exclude=DEBIAN "$1" | cut -f1)
	sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$3|" -e "s|@SIZE@|$size|" \
		-e "s|@MAINTAINER@|$maintainer|" -e "s|@APT_URL@|${APT_URL:-}|" "$2" >"$1/DEBIAN/control"
	(cd "$1" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
		xargs -0 md5sum >DEBIAN/md5sums)
	chmod 0644 "$1/DEBIAN/control" "$1/DEBIAN/md5sums"
	find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group -Zxz --build "$1" "$4" >/dev/null
	echo "$4"
}

for arch in $arches; do
	case $arch in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	armhf) goarch=arm goarm=6 ;; # Raspberry Pi OS's 32-bit userland runs on ARMv6 (Pi Zero/1)
	*) echo "deb.sh: unknown architecture $arch" >&2; exit 2 ;;
	esac
	root=$work/$arch
	install -d "$root/DEBIAN"
	build "$goarch" "$goarm" "$work/waxmpp-$arch"

	# Every Go module in the binary must be in the copyright file.
	missing=$($GO version -m "$work/waxmpp-$arch" | awk '$1 == "dep" { print $2 }' | while read -r mod; do
		grep -q "^Files:.* $mod\( \|$\)" packaging/debian/copyright || echo "$mod"
	done)
	if [ -n "$missing" ]; then
		echo "deb.sh: packaging/debian/copyright does not name these modules in the binary:" $missing >&2
		exit 1
	fi

	install -D -m 0755 "$work/waxmpp-$arch" "$root/usr/bin/waxmpp"
	install -D -m 0644 systemd/waxmpp.service "$root/lib/systemd/system/waxmpp.service"
	install -D -m 0644 systemd/waxmpp-setup.service "$root/lib/systemd/system/waxmpp-setup.service"
	install -D -m 0644 systemd/waxmpp.sysusers "$root/usr/lib/sysusers.d/waxmpp.conf"
	install -D -m 0644 systemd/waxmpp.tmpfiles "$root/usr/lib/tmpfiles.d/waxmpp.conf"
	install -d "$root/usr/share/man/man1" "$root/usr/share/doc/waxmpp/examples"
	gzip -9n <"$work/waxmpp.1" >"$root/usr/share/man/man1/waxmpp.1.gz"
	gzip -9n <"$work/changelog" >"$root/usr/share/doc/waxmpp/changelog.gz"
	install -m 0644 packaging/debian/copyright "$root/usr/share/doc/waxmpp/copyright"
	install -m 0644 "$example" "$root/usr/share/doc/waxmpp/examples/config.toml"
	install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/waxmpp"

	for s in postinst prerm postrm; do
		install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"
	done
	pack "$root" packaging/debian/control.in "$arch" "$out/waxmpp_${version}_$arch.deb"
done

if [ -n "${APT_URL:-}" ]; then
	root=$work/apt-source
	install -D -m 0644 "$APT_KEYRING" "$root/usr/share/keyrings/waxmpp-archive-keyring.gpg"
	install -d "$root/etc/apt/sources.list.d" "$root/usr/share/doc/waxmpp-apt-source" "$root/DEBIAN"
	sh packaging/sources.sh "$APT_URL" "$suite" >"$root/etc/apt/sources.list.d/waxmpp.sources"
	chmod 0644 "$root/etc/apt/sources.list.d/waxmpp.sources"
	echo /etc/apt/sources.list.d/waxmpp.sources >"$root/DEBIAN/conffiles"
	chmod 0644 "$root/DEBIAN/conffiles"
	install -m 0644 packaging/debian/copyright-apt-source "$root/usr/share/doc/waxmpp-apt-source/copyright"
	sed '1s/^waxmpp (/waxmpp-apt-source (/' "$work/changelog" | gzip -9n >"$root/usr/share/doc/waxmpp-apt-source/changelog.gz"
	pack "$root" packaging/debian/control-apt-source.in all "$out/waxmpp-apt-source_${version}_all.deb"
fi
