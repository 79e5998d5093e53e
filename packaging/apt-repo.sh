#!/usr/bin/env bash
# Builds the packages for the apt repository and adds them to a signed
# repository in APT_REPO (dists/ and pool/, amd64 arm64 armhf); `make
# apt-repo` runs it. Packages already in the pool stay, so the repository
# keeps every version it was given. Publish APT_REPO's contents at APT_URL.
#
# Settings (environment), besides those of deb.sh:
#   APT_URL    where the repository is published (required): the packages'
#              waxmpp.sources points there, e.g. https://apt.example.org/waxmpp
#   APT_KEY    the signing key, a key id or fingerprint in $GNUPGHOME (required)
#   APT_REPO   the repository's directory (default: dist/apt)
#   APT_SUITE  the suite (default: stable)
#   APT_DEBS   packages to add instead of building them (paths)
#
# The repository's top holds waxmpp-archive-keyring.gpg and waxmpp.sources,
# the two files a machine needs before its first apt-get install (README).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${APT_URL:?apt-repo: set APT_URL to where the repository is published}"
: "${APT_KEY:?apt-repo: set APT_KEY to the signing key (a key id in \$GNUPGHOME)}"
repo=${APT_REPO:-dist/apt}
suite=${APT_SUITE:-stable}
export APT_URL APT_SUITE=$suite
arches="amd64 arm64 armhf"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$repo/pool/main/w/waxmpp"

# The public key, as a binary keyring for Signed-By.
gpg --batch --export "$APT_KEY" >"$work/keyring.gpg"
if [ "$(gpg --batch --show-keys --with-colons "$work/keyring.gpg" | grep -c '^pub:')" != 1 ]; then
	echo "apt-repo: APT_KEY=$APT_KEY must name exactly one public key" >&2
	exit 1
fi
install -m 0644 "$work/keyring.gpg" "$repo/waxmpp-archive-keyring.gpg"
sh packaging/sources.sh "$APT_URL" "$suite" >"$repo/waxmpp.sources"

if [ -n "${APT_DEBS:-}" ]; then
	debs=$APT_DEBS
else
	debs=$(APT_KEYRING="$repo/waxmpp-archive-keyring.gpg" DEB_OUT="$work/debs" bash packaging/deb.sh)
fi
for deb in $debs; do
	install -m 0644 "$deb" "$repo/pool/main/w/waxmpp/"
done

dists=$repo/dists/$suite
for arch in $arches; do
	mkdir -p "$dists/main/binary-$arch"
	(cd "$repo" && apt-ftparchive --arch "$arch" packages pool/main) >"$dists/main/binary-$arch/Packages"
	gzip -9n <"$dists/main/binary-$arch/Packages" >"$dists/main/binary-$arch/Packages.gz"
done
rm -f "$dists/Release" "$dists/InRelease" "$dists/Release.gpg"
apt-ftparchive \
	-o APT::FTPArchive::Release::Origin=waxmpp \
	-o APT::FTPArchive::Release::Label=waxmpp \
	-o APT::FTPArchive::Release::Suite="$suite" \
	-o APT::FTPArchive::Release::Codename="$suite" \
	-o APT::FTPArchive::Release::Architectures="$arches" \
	-o APT::FTPArchive::Release::Components=main \
	-o APT::FTPArchive::Release::Description="waxmpp, a WhatsApp to XMPP bridge" \
	release "$dists" >"$work/Release"
mv "$work/Release" "$dists/Release"
gpg --batch --yes --local-user "$APT_KEY" --clearsign -o "$dists/InRelease" "$dists/Release"
gpg --batch --yes --local-user "$APT_KEY" --armor --detach-sign -o "$dists/Release.gpg" "$dists/Release"
echo "$repo"
