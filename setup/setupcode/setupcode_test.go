package setupcode

import (
	"bytes"
	"strings"
	"testing"
)

func TestShortRandom(t *testing.T) {
	if _, err := New(bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Error("a short random source gave a code")
	}
	// 0xff is rejected (above 248), the rest map into the alphabet.
	code, err := New(bytes.NewReader(bytes.Repeat([]byte{0xff, 0}, 12)))
	if err != nil || code != "AAAA-AAAA-AAAA" {
		t.Errorf("code %q, err %v", code, err)
	}
}

func TestShape(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		code, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 14 || code[4] != '-' || code[9] != '-' {
			t.Fatalf("code %q is not XXXX-XXXX-XXXX", code)
		}
		for _, r := range strings.ReplaceAll(code, "-", "") {
			if !strings.ContainsRune(Alphabet, r) {
				t.Fatalf("code %q has %q, outside the alphabet", code, r)
			}
		}
		if seen[code] {
			t.Fatalf("code %q made twice", code)
		}
		seen[code] = true
	}
}
