// Package qr renders a WhatsApp pairing code's content as a QR image, for
// the core to upload (bridge.CoreConfig.QR). It wraps rsc.io/qr, so that
// package bridge needs nothing but the standard library.
package qr

import (
	"fmt"

	"rsc.io/qr"
)

// Scale is the image's pixels per module: 8 keeps the PNG small (about
// 2 kB for a pairing code) and sharp on a phone's screen.
const Scale = 8

// PNG renders text as a QR code in PNG format, with the quiet zone, at
// error correction level L (the pairing code is shown on a screen, not
// printed).
func PNG(text string) ([]byte, error) {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return nil, fmt.Errorf("qr: encode: %w", err)
	}
	code.Scale = Scale
	return code.PNG(), nil
}
