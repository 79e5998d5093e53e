package media

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// seal encrypts plain as an XEP-0454 client does, with crypto/cipher.
func seal(t testing.TB, key, iv, plain []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, iv, plain, nil)
}

// trickle reads at most a few bytes at a time, so that the tag's hold-back
// crosses every kind of boundary.
type trickle struct {
	r   io.Reader
	rng *mrand.Rand
}

func (t *trickle) Read(p []byte) (int, error) {
	n := 1 + t.rng.IntN(40)
	if n > len(p) {
		n = len(p)
	}
	return t.r.Read(p[:n])
}

func TestAESGCMMatchesStdlib(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	key := make([]byte, 32)
	rand.Read(key)
	for _, ivLen := range []int{12, 16} {
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 1000, 32 << 10, 32<<10 + 7, 200_003} {
			iv := make([]byte, ivLen)
			rand.Read(iv)
			plain := make([]byte, n)
			rand.Read(plain)
			ct := seal(t, key, iv, plain)
			for _, src := range []io.Reader{bytes.NewReader(ct), &trickle{bytes.NewReader(ct), rng}} {
				var out bytes.Buffer
				got, err := DecryptAESGCM(&out, src, key, iv)
				if err != nil || got != int64(n) || !bytes.Equal(out.Bytes(), plain) {
					t.Fatalf("iv %d, %d bytes: got %d bytes, equal %v, err %v", ivLen, n, got, bytes.Equal(out.Bytes(), plain), err)
				}
			}
			if n == 0 {
				continue
			}
			// Any changed bit, in data or tag, fails.
			for _, at := range []int{0, n / 2, n - 1, n, len(ct) - 1} {
				bad := bytes.Clone(ct)
				bad[at] ^= 0x10
				if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(bad), key, iv); !errors.Is(err, ErrBadTag) {
					t.Fatalf("iv %d, %d bytes, bit flipped at %d: err %v", ivLen, n, at, err)
				}
			}
			// Cut short, or with a byte more.
			if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(ct[:len(ct)-1]), key, iv); !errors.Is(err, ErrBadTag) {
				t.Fatalf("truncated: %v", err)
			}
			if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(append(bytes.Clone(ct), 0)), key, iv); !errors.Is(err, ErrBadTag) {
				t.Fatalf("extended: %v", err)
			}
		}
	}
	// A different key fails.
	iv := make([]byte, 12)
	ct := seal(t, key, iv, []byte("hello"))
	other := bytes.Clone(key)
	other[0] ^= 1
	if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(ct), other, iv); !errors.Is(err, ErrBadTag) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(ct[:10]), key, iv); !errors.Is(err, ErrBadTag) {
		t.Errorf("shorter than a tag: %v", err)
	}
}

func TestParseAESGCM(t *testing.T) {
	iv12, key := strings.Repeat("ab", 12), strings.Repeat("CD", 32)
	a, err := ParseAESGCM("aesgcm://upload.example.org:5281/share/x%20y/photo.jpg#" + iv12 + key)
	if err != nil {
		t.Fatal(err)
	}
	if a.URL != "https://upload.example.org:5281/share/x%20y/photo.jpg" || hex.EncodeToString(a.IV) != iv12 || len(a.Key) != 32 || a.Key[0] != 0xcd {
		t.Errorf("got %+v", a)
	}
	if a, err := ParseAESGCM("aesgcm://h/f#" + strings.Repeat("00", 16) + key); err != nil || len(a.IV) != 16 {
		t.Errorf("16-byte IV: %+v %v", a, err)
	}
	for _, bad := range []string{
		"https://h/f#" + iv12 + key,
		"aesgcm://h/f",
		"aesgcm://h/f#" + iv12,
		"aesgcm://h/f#" + iv12 + key + "00",
		"aesgcm://h/f#zz" + iv12[2:] + key,
		"aesgcm:///f#" + iv12 + key,
		"aesgcm://%zz/f#" + iv12 + key,
	} {
		if _, err := ParseAESGCM(bad); !errors.Is(err, ErrBadAESGCM) {
			t.Errorf("ParseAESGCM(%q): %v", bad, err)
		}
	}
}

func BenchmarkDecryptAESGCM(b *testing.B) {
	key, iv := make([]byte, 32), make([]byte, 12)
	plain := make([]byte, 8<<20)
	ct := seal(b, key, iv, plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if _, err := DecryptAESGCM(io.Discard, bytes.NewReader(ct), key, iv); err != nil {
			b.Fatal(err)
		}
	}
}
