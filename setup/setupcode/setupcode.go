// Package setupcode makes the setup code that guards the setup page: the SD
// image writes one at first boot (image/bootcfg), `waxmpp setup --web`
// makes one when there is none (setup/web). Both use this one generator,
// so a code looks the same wherever it came from.
package setupcode

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
)

// Alphabet has no 0/O, 1/I/L: a code is read off a screen and typed.
const Alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// New makes a code like "K7WQ-3MXP-9TRD" (12 characters, 59 bits) from r
// (crypto/rand when nil). A source that runs short is an error, never a
// shorter code.
func New(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b strings.Builder
	buf := make([]byte, 1)
	for n := 0; n < 12; {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("setup code: %w", err)
		}
		// Rejection sampling keeps every symbol equally likely.
		if int(buf[0]) >= 256/len(Alphabet)*len(Alphabet) {
			continue
		}
		if n > 0 && n%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(Alphabet[int(buf[0])%len(Alphabet)])
		n++
	}
	return b.String(), nil
}
