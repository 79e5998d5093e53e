#!/bin/bash
# Builds the Raspberry Pi SD image: Debian bookworm arm64 from Debian's
# packages (mmdebstrap) plus waxmpp from our apt repository, laid out as an
# MBR disk with a FAT boot partition and an ext4 root by genimage (no loop
# mounts). Writes $OUT/waxmpp-$VERSION-arm64.img.xz and its .sha256.
#
# usage: image/build.sh VERSION
# environment:
#   APT_REPO     our apt repository, as `make apt-repo` writes it: waxmpp and
#                waxmpp-apt-source are installed from it, checked against its
#                waxmpp-archive-keyring.gpg. A release image is built from the
#                published repository (APT_REPO=dist/apt after make apt-repo
#                with the real APT_URL and APT_KEY). Without APT_REPO, the
#                packages of this checkout (packaging/deb.sh, arm64) go into a
#                repository of its own, signed with a throwaway key: such an
#                image boots and sets up like a release, but its apt source
#                (APT_URL, https://apt.waxmpp.invalid/waxmpp unless given)
#                brings it no waxmpp upgrades
#   APT_SUITE    its suite (stable)
#   MIRROR       Debian's mirror (http://deb.debian.org/debian), SECURITY
#                Debian's security mirror
#   OUT          output directory (dist)
#   XZ_LEVEL     xz preset (6)
set -euo pipefail

VERSION=${1:?usage: image/build.sh VERSION}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${OUT:-dist}" && cd "${OUT:-dist}" && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
APT_SUITE=${APT_SUITE:-stable}
XZ_LEVEL=${XZ_LEVEL:-6}
# Hidden, so that go's ./... patterns (make test, make lint) never walk
# into the root file system, which is root's and has mounts while it is
# being built.
WORK=$OUT/.image-build
IMG=waxmpp-$VERSION-arm64.img
start=$(date +%s)
step() { echo "image: $* ($(($(date +%s) - start)) s)"; }
# dpkg-architecture: mmdebstrap's eatmydata hook.
for tool in mmdebstrap dpkg-architecture genimage mke2fs mkdosfs mcopy xz sha256sum; do
	command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install mmdebstrap dpkg-dev genimage e2fsprogs dosfstools mtools xz-utils)" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
	echo "image: must run as root (mmdebstrap --mode=root keeps file ownership for mke2fs -d)" >&2
	exit 1
fi
# A build that was killed leaves mmdebstrap's mounts (proc, sys, dev) in
# its root file system: unmount them before removing it.
awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
	umount -l "$m"
done
rm -rf "$WORK"
mkdir -p "$WORK"

if [ -z "${APT_REPO:-}" ]; then
	step "packages of this checkout (packaging/deb.sh) in a repository signed with a throwaway key"
	for tool in gpg gpgconf apt-ftparchive dpkg-deb; do
		command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install gnupg apt-utils dpkg)" >&2; exit 1; }
	done
	APT_REPO=$WORK/apt
	gnupg=$(mktemp -d)
	GNUPGHOME=$gnupg gpg --batch --quiet --passphrase '' --quick-gen-key 'waxmpp image build <image@waxmpp.invalid>' ed25519 sign 1d 2>/dev/null
	key=$(GNUPGHOME=$gnupg gpg --batch --with-colons --list-keys | awk -F: '$1 == "fpr" { print $10; exit }')
	(cd "$HERE/.." && GNUPGHOME=$gnupg APT_URL=${APT_URL:-https://apt.waxmpp.invalid/waxmpp} APT_KEY=$key \
		APT_REPO=$APT_REPO APT_SUITE=$APT_SUITE DEB_ARCHES=arm64 nice -n 19 bash packaging/apt-repo.sh >/dev/null)
	GNUPGHOME=$gnupg gpgconf --kill all
	rm -rf "$gnupg"
fi
if [ ! -f "$APT_REPO/dists/$APT_SUITE/InRelease" ] || [ ! -f "$APT_REPO/waxmpp-archive-keyring.gpg" ]; then
	echo "image: no apt repository in $APT_REPO (suite $APT_SUITE): run make apt-repo first (APT_URL, APT_KEY)" >&2
	exit 1
fi
APT_REPO=$(cd "$APT_REPO" && pwd)
export APT_REPO APT_SUITE HERE

# Maintainer scripts of arm64 packages run under qemu-user through
# binfmt_misc. A machine without systemd (CI containers, VMs) may have
# qemu-user-static installed but not registered: register it here.
"$HERE/binfmt.sh"

# Packages: only what the appliance needs (see image/README.md).
PACKAGES=(
	systemd-sysv udev dbus kmod procps iproute2
	e2fsprogs fdisk dosfstools
	linux-image-arm64 initramfs-tools zstd raspi-firmware
	firmware-brcm80211 wireless-regdb wpasupplicant
	systemd-timesyncd systemd-resolved fake-hwclock
	avahi-daemon libnss-mdns
	openssh-server
	ca-certificates unattended-upgrades
	ffmpeg
)
include=$(IFS=,; echo "${PACKAGES[*]}")

step "rootfs (mmdebstrap, arm64 under qemu-user)"
# The initramfs is built once at the end (customize.sh): every kernel,
# firmware and udev trigger would otherwise rebuild it under emulation.
# Documentation and translations are left out (copyright files and
# waxmpp's example config, which the config written at boot names, are kept),
# and so are Mesa's GPU drivers with the LLVM and Z3 they link (150 MB):
# ffmpeg's libavdevice pulls in SDL and OpenGL, which a headless Pi never
# loads, and nothing else links them.
nice -n 19 mmdebstrap \
	--mode=root --variant=apt --architectures=arm64 \
	--components=main,non-free-firmware \
	--include="$include" \
	--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-include=/usr/share/doc/waxmpp/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/lintian/*' \
	--dpkgopt='path-exclude=/usr/lib/aarch64-linux-gnu/dri/*' \
	--dpkgopt='path-exclude=/usr/lib/aarch64-linux-gnu/libLLVM-15.so*' \
	--dpkgopt='path-exclude=/usr/lib/aarch64-linux-gnu/libz3.so*' \
	--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/sbin/update-initramfs.deferred --add /usr/sbin/update-initramfs && printf "#!/bin/sh\nexit 0\n" > "$1/usr/sbin/update-initramfs" && chmod 755 "$1/usr/sbin/update-initramfs"' \
	--customize-hook="$HERE/customize.sh" \
	bookworm "$WORK/rootfs" \
	"deb $MIRROR bookworm main non-free-firmware" \
	"deb $MIRROR bookworm-updates main non-free-firmware" \
	"deb $SECURITY bookworm-security main non-free-firmware"

# mmdebstrap copied the build host's /etc/hostname and /etc/resolv.conf
# in for the build, and empties /etc/machine-id when it cleans up: set the
# image's own. "uninitialized" makes the card's first boot systemd's first
# boot, with a machine-id of its own.
install -m 0644 "$HERE/rootfs/etc/hostname" "$WORK/rootfs/etc/hostname"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$WORK/rootfs/etc/resolv.conf"
echo uninitialized > "$WORK/rootfs/etc/machine-id"

step "disk image (genimage)"
rootkb=$(du -sk --exclude=./boot/firmware "$WORK/rootfs" | cut -f1)
# Room for the first apt upgrades; the partition grows to the card at first boot.
rootmb=$(( rootkb / 1024 * 115 / 100 + 256 ))
cat > "$WORK/genimage.cfg" <<CFG
image boot.vfat {
	vfat {
		label = "WAXMPP-BOOT"
		extraargs = "-F 32"
	}
	mountpoint = "/boot/firmware"
	size = 256M
}
image root.ext4 {
	ext4 {
		use-mke2fs = true
		label = "waxmpp-root"
		extraargs = "-m 2"
	}
	mountpoint = "/"
	size = ${rootmb}M
}
image $IMG {
	hdimage {
		partition-table-type = "mbr"
	}
	partition boot {
		partition-type = 0x0C
		bootable = true
		offset = 4M
		image = "boot.vfat"
	}
	partition root {
		partition-type = 0x83
		image = "root.ext4"
	}
}
CFG
mkdir -p "$WORK/genimage-tmp" "$WORK/genimage-in" "$WORK/genimage-out"
nice -n 19 genimage --config "$WORK/genimage.cfg" --rootpath "$WORK/rootfs" \
	--tmppath "$WORK/genimage-tmp" --inputpath "$WORK/genimage-in" --outputpath "$WORK/genimage-out"

step "compress (xz -$XZ_LEVEL)"
rm -f "$OUT/$IMG.xz" "$OUT/$IMG.xz.sha256"
nice -n 19 xz -T0 "-$XZ_LEVEL" -c "$WORK/genimage-out/$IMG" > "$OUT/$IMG.xz"
(cd "$OUT" && sha256sum "$IMG.xz" > "$IMG.xz.sha256")
raw=$(stat -c %s "$WORK/genimage-out/$IMG")
xzs=$(stat -c %s "$OUT/$IMG.xz")
# The raw image stays in $WORK/genimage-out (make image-test boots it as
# well, for developing the image); the root file system goes.
rm -rf "$WORK/genimage-tmp" "$WORK/rootfs"
step "done: $OUT/$IMG.xz ($((xzs / 1048576)) MiB; raw $((raw / 1048576)) MiB)"
