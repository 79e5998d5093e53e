#!/bin/sh
# Prints the deb822 apt source of the waxmpp repository at URL, suite SUITE:
#   sh packaging/sources.sh URL [SUITE]
set -e
echo "Types: deb"
echo "URIs: $1"
echo "Suites: ${2:-stable}"
echo "Components: main"
echo "Signed-By: /usr/share/keyrings/waxmpp-archive-keyring.gpg"
