#!/bin/sh
# Makes sure arm64 binaries run through qemu-user (binfmt_misc), as
# mmdebstrap needs for a foreign architecture. Debian's systemd registers
# qemu-user-static at boot; a machine without systemd as PID 1 may not.
set -eu
dir=/proc/sys/fs/binfmt_misc
[ -e $dir/qemu-aarch64 ] && exit 0
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -e $conf ] || { echo "image: $conf missing (apt-get install qemu-user-static)" >&2; exit 1; }
mountpoint -q $dir || mount -t binfmt_misc binfmt_misc $dir
[ -e $dir/qemu-aarch64 ] || cat $conf > $dir/register
