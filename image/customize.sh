#!/bin/bash
# mmdebstrap --customize-hook: runs on the build host with the arm64 root
# file system in $1, after Debian's packages are installed. Installs waxmpp
# from our apt repository, the image's own files (rootfs/), builds the
# initramfs once, and removes everything that must be unique per card.
set -euo pipefail
root=$1
: "${HERE:?}" "${APT_REPO:?}" "${APT_SUITE:?}"
ch() { chroot "$root" "$@"; }

# The image's files. Only /etc and /usr paths (merged /usr: /lib is a symlink).
cp -rT --preserve=mode "$HERE/rootfs" "$root"

# waxmpp from our repository, signature checked by apt like any upgrade.
# waxmpp-apt-source then holds the repository's public address and key
# (/etc/apt/sources.list.d/waxmpp.sources), so apt upgrade and
# unattended-upgrades keep waxmpp current.
mkdir -p "$root/tmp/waxmpp-repo" "$root/tmp/waxmpp-sources.d"
cp -rT "$APT_REPO" "$root/tmp/waxmpp-repo"
cat > "$root/tmp/waxmpp-sources.d/waxmpp-build.sources" <<SRC
Types: deb
URIs: file:///tmp/waxmpp-repo
Suites: $APT_SUITE
Components: main
Signed-By: /tmp/waxmpp-repo/waxmpp-archive-keyring.gpg
SRC
apt_local=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/tmp/waxmpp-sources.d)
ch apt-get "${apt_local[@]}" update -qq
ch apt-get "${apt_local[@]}" install -y -qq --no-install-recommends waxmpp waxmpp-apt-source
rm -rf "$root/tmp/waxmpp-repo" "$root/tmp/waxmpp-sources.d"
test -s "$root/etc/apt/sources.list.d/waxmpp.sources"

# avahi on IPv4 only: an IPv6 address that comes after the link-local one
# (a router's prefix, a privacy address renewed each day; QEMU's fec0::)
# made avahi take its own announcement for another host's and rename the
# Pi NAME-2.local (seen in the boot test: "Host name conflict, retrying
# with kitchen-2"), so the setup page's address stopped working. Both
# settings are needed: use-ipv6=no closes the IPv6 socket, but avahi still
# publishes each IPv6 address as an AAAA record over IPv4 unless
# publish-aaaa-on-ipv4=no, and a new address still withdrew and
# re-announced the host's records (the boot test saw the rename again with
# use-ipv6=no alone). Browsers find NAME.local over IPv4.
conf="$root/etc/avahi/avahi-daemon.conf"
sed -i -e 's/^use-ipv6=yes$/use-ipv6=no/' \
	-e 's/^#\?publish-aaaa-on-ipv4=.*$/publish-aaaa-on-ipv4=no/' "$conf"
grep -qx 'use-ipv6=no' "$conf"
grep -qx 'publish-aaaa-on-ipv4=no' "$conf"

# Units: the image's own, and what an appliance does not want.
ch systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
	avahi-daemon.service fake-hwclock.service \
	waxmpp-growroot.service waxmpp-bootconfig.service waxmpp-ssh-keygen.service \
	waxmpp-fake-hwclock.timer
# networkd-wait-online would hold the boot for two minutes on a card without
# network; waxmpp reconnects by itself. wpa_supplicant runs per interface
# (wpa_supplicant@wlan0, started when wlan0 appears), not the D-Bus one.
ch systemctl disable systemd-networkd-wait-online.service wpa_supplicant.service 2>/dev/null || true
ch systemctl mask systemd-networkd-wait-online.service
# The machine-id is "uninitialized" (below), so the first boot is systemd's
# "first boot": systemd-firstboot would stop at the console asking for a
# locale, time zone and root password. An appliance asks nothing (C.UTF-8,
# UTC, no password).
ch systemctl mask systemd-firstboot.service
# e2scrub checks LVM snapshots, which the card has none of.
ch systemctl mask e2scrub_reap.service e2scrub_all.timer
ch systemctl set-default multi-user.target
mkdir -p "$root/etc/systemd/system/sys-subsystem-net-devices-wlan0.device.wants"
ln -sf /usr/lib/systemd/system/wpa_supplicant@.service \
	"$root/etc/systemd/system/sys-subsystem-net-devices-wlan0.device.wants/wpa_supplicant@wlan0.service"
# SSH stays off until waxmpp.txt gives a key (Debian's ssh.service honours this file).
touch "$root/etc/ssh/sshd_not_to_be_run"

# raspi-firmware writes cmdline.txt from these at every kernel update: the
# root by label (the same card boots as mmcblk0 or, over USB, sda), and the
# HDMI screen last, so that boot messages and waxmpp's notices are shown
# there (the serial port gets a login too). Debian's own Pi images edit
# this file the same way.
sed -i -e 's|^#\?ROOTPART=.*|ROOTPART=LABEL=waxmpp-root|' \
	-e 's|^#\?CONSOLES=.*|CONSOLES="ttyS1,115200 tty0"|' "$root/etc/default/raspi-firmware"
grep -q '^ROOTPART=LABEL=waxmpp-root$' "$root/etc/default/raspi-firmware"
grep -q '^CONSOLES="ttyS1,115200 tty0"$' "$root/etc/default/raspi-firmware"

# The initramfs, once (update-initramfs was diverted to a no-op during the
# package installation). raspi-firmware's hook then copies kernel, initrd,
# device trees and its config.txt/cmdline.txt to /boot/firmware.
rm "$root/usr/sbin/update-initramfs"
ch dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
ch update-initramfs -c -k all

# Nothing unique per card ships in the image: a fresh machine-id (first
# boot), SSH host keys and random seed are made on the card.
echo uninitialized > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed" \
	"$root"/etc/ssh/ssh_host_*_key "$root"/etc/ssh/ssh_host_*_key.pub

# The boot partition's config, for people to fill in on any computer.
install -m 0644 "$HERE/waxmpp.txt" "$root/boot/firmware/waxmpp.txt"

# Smaller image: no package lists, caches or logs from the build.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
	"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -delete
# The journal is volatile (journald.conf.d/waxmpp.conf); without this
# directory it stays in RAM even if that setting is lost.
rm -rf "$root/var/log/journal"
