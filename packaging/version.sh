#!/bin/sh
# Prints the Debian version of this tree: the top entry of
# packaging/debian/changelog at a release tag (v0.1.0), else that version
# followed by ~git<commits>.<hash>, which sorts before the release and
# after every earlier build.
set -e
cd "$(dirname "$0")/.."
top=$(sed -n '1s/^waxmpp (\([^)]*\)).*/\1/p' packaging/debian/changelog)
tag=$(git describe --tags --exact-match HEAD 2>/dev/null || true)
if [ -z "$tag" ] && git rev-parse HEAD >/dev/null 2>&1; then
	echo "$top~git$(git rev-list --count HEAD).$(git rev-parse --short=7 HEAD)"
else
	echo "$top"
fi
