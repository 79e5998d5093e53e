#!/bin/sh
# Runs the store's tests as a 32-bit ARMv6 binary (Raspberry Pi Zero/1)
# under qemu-user (Debian: qemu-user-static). Run from the module root:
#   sh bridge/store/testdata/arm-qemu-test.sh [-test.run REGEXP ...]
# The crash test re-executes the test binary; WAXMPP_TEST_EXEC makes it go
# through the emulator, since no binfmt_misc handler is assumed.
set -eu
bin=${TMPDIR:-/tmp}/waxmpp-store.arm
GOARCH=arm GOARM=6 CGO_ENABLED=0 go test -c -o "$bin" ./bridge/store
cd bridge/store
WAXMPP_TEST_EXEC=qemu-arm-static exec qemu-arm-static "$bin" -test.short "$@"
