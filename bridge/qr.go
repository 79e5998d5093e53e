package bridge

import (
	"fmt"

	"rsc.io/qr"
)

// qrPNG renders a pairing QR code's content as a PNG (8 pixels per module,
// with the quiet zone), small enough to upload in a moment.
func qrPNG(text string) ([]byte, error) {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return nil, fmt.Errorf("qr: encode: %w", err)
	}
	code.Scale = 8
	return code.PNG(), nil
}
