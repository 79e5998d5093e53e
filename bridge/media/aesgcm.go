package media

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"waxmpp/bridge"
)

// XEP-0454 (OMEMO media sharing): a client encrypts a file with AES-256-GCM,
// uploads ciphertext||tag, and sends aesgcm://host/path#<iv><key> (hex; a
// 12-byte IV, or the 16 bytes older clients use, then the 32-byte key).
//
// crypto/cipher's GCM decrypts only whole messages in memory; a voice note
// is small but a video may be 100 MB, more than a Pi Zero can spare. So
// decryption here streams: AES in counter mode as GCM runs it, and GHASH
// computed alongside, the tag compared at the end. Nothing decrypted may
// be used before then: the caller writes to a temporary file and removes
// it when the tag does not verify (TestAESGCMMatchesStdlib checks it
// against crypto/cipher).

// ErrBadTag means an aesgcm:// file does not decrypt to what was sent: a
// wrong key, or the file was changed or cut.
var ErrBadTag = fmt.Errorf("media: %w (wrong key, or damaged)", bridge.ErrNotVerified)

// ErrBadAESGCM means an aesgcm:// URL is malformed.
var ErrBadAESGCM = errors.New("media: malformed aesgcm:// URL")

const gcmTagSize = 16

// AESGCM is a parsed aesgcm:// URL.
type AESGCM struct {
	URL string // the https URL of the ciphertext
	IV  []byte // 12 or 16 bytes
	Key []byte // 32 bytes
}

// ParseAESGCM parses an XEP-0454 aesgcm:// URL.
func ParseAESGCM(raw string) (AESGCM, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || !strings.EqualFold(u.Scheme, "aesgcm") || u.Host == "" {
		return AESGCM{}, ErrBadAESGCM
	}
	frag, err := hex.DecodeString(u.Fragment)
	if err != nil || (len(frag) != 12+32 && len(frag) != 16+32) {
		return AESGCM{}, fmt.Errorf("%w: the key part is not 44 or 48 bytes of hex", ErrBadAESGCM)
	}
	ivLen := len(frag) - 32
	u.Scheme, u.Fragment, u.RawFragment = "https", "", ""
	return AESGCM{URL: u.String(), IV: frag[:ivLen], Key: frag[ivLen:]}, nil
}

// DecryptAESGCM reads ciphertext||tag from src and writes the plaintext
// to dst as it goes; it returns the plaintext's length, or ErrBadTag when
// the tag does not verify (dst then holds garbage the caller must drop).
func DecryptAESGCM(dst io.Writer, src io.Reader, key, iv []byte) (int64, error) {
	d, err := newGCMStream(key, iv)
	if err != nil {
		return 0, err
	}
	// The last 16 bytes are the tag: hold back that many until EOF.
	buf := make([]byte, 32<<10+gcmTagSize)
	out := make([]byte, len(buf))
	held := 0
	var total int64
	for {
		n, rerr := src.Read(buf[held:])
		held += n
		if held > gcmTagSize {
			c := buf[:held-gcmTagSize]
			d.xor(out[:len(c)], c)
			if _, err := dst.Write(out[:len(c)]); err != nil {
				return total, err
			}
			total += int64(len(c))
			held = copy(buf, buf[len(c):held])
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return total, rerr
		}
	}
	if held != gcmTagSize {
		return total, ErrBadTag // shorter than a tag
	}
	want := d.sum()
	if subtle.ConstantTimeCompare(want[:], buf[:gcmTagSize]) != 1 {
		return total, ErrBadTag
	}
	return total, nil
}

// gcmStream is AES-GCM decryption of one message, fed in pieces.
type gcmStream struct {
	block   cipher.Block
	h       *ghashKey
	j0      [16]byte
	ctr     [16]byte
	ks      [16]byte // keystream block
	ksUsed  int      // bytes of ks used
	y       [16]byte // GHASH state
	part    [16]byte // ciphertext not yet hashed (a partial block)
	partLen int
	n       uint64 // ciphertext bytes so far
}

func newGCMStream(key, iv []byte) (*gcmStream, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("media: aesgcm key: %w", err)
	}
	if len(iv) == 0 {
		return nil, errors.New("media: aesgcm: empty IV")
	}
	d := &gcmStream{block: block, ksUsed: 16}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	d.h = newGHASHKey(h)
	if len(iv) == 12 {
		copy(d.j0[:], iv)
		d.j0[15] = 1
	} else {
		// J0 = GHASH(IV || 0-padding || [0]64 || [len(IV) in bits]64).
		var y [16]byte
		for i := 0; i < len(iv); i += 16 {
			var blk [16]byte
			copy(blk[:], iv[i:])
			d.h.update(&y, &blk)
		}
		var lens [16]byte
		binary.BigEndian.PutUint64(lens[8:], uint64(len(iv))*8)
		d.h.update(&y, &lens)
		d.j0 = y
	}
	d.ctr = d.j0
	return d, nil
}

// xor decrypts c into dst (same length) and hashes c.
func (d *gcmStream) xor(dst, c []byte) {
	for i := range c {
		if d.ksUsed == 16 {
			inc32(&d.ctr)
			d.block.Encrypt(d.ks[:], d.ctr[:])
			d.ksUsed = 0
		}
		dst[i] = c[i] ^ d.ks[d.ksUsed]
		d.ksUsed++
	}
	d.n += uint64(len(c))
	for len(c) > 0 {
		k := copy(d.part[d.partLen:], c)
		d.partLen += k
		c = c[k:]
		if d.partLen == 16 {
			d.h.update(&d.y, &d.part)
			d.partLen = 0
		}
	}
}

// sum is the tag of all ciphertext fed so far (no additional data).
func (d *gcmStream) sum() [16]byte {
	y := d.y
	if d.partLen > 0 {
		var blk [16]byte
		copy(blk[:], d.part[:d.partLen])
		d.h.update(&y, &blk)
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[8:], d.n*8)
	d.h.update(&y, &lens)
	var s [16]byte
	d.block.Encrypt(s[:], d.j0[:])
	for i := range s {
		s[i] ^= y[i]
	}
	return s
}

// inc32 increments the last 32 bits of a counter block, as GCM does.
func inc32(b *[16]byte) {
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+1)
}

// ghashKey multiplies by H in GF(2^128) (GCM's bit order: the first bit
// of a block is the coefficient of x^0), by tables: t[p][n] is H times
// the block whose only set bits are nibble n at nibble position p (0 is
// the high nibble of the first byte). A product is then 32 lookups.
type ghashKey struct {
	t [32][16][2]uint64 // hi, lo as big-endian halves of the block
}

func newGHASHKey(h [16]byte) *ghashKey {
	// p[i] = x^i · H: multiplying by x shifts right one bit (GCM's
	// order), reducing by x^128 = x^7 + x^2 + x + 1 (0xe1 in the first byte).
	var p [128][2]uint64
	v := [2]uint64{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	for i := range p {
		p[i] = v
		carry := v[1] & 1
		v[1] = v[1]>>1 | v[0]<<63
		v[0] >>= 1
		if carry != 0 {
			v[0] ^= 0xe1 << 56
		}
	}
	k := &ghashKey{}
	for pos := range 32 {
		for n := range 16 {
			var s [2]uint64
			for j := range 4 {
				if n&(8>>j) != 0 {
					s[0] ^= p[4*pos+j][0]
					s[1] ^= p[4*pos+j][1]
				}
			}
			k.t[pos][n] = s
		}
	}
	return k
}

// update sets y = (y ^ blk) · H.
func (k *ghashKey) update(y, blk *[16]byte) {
	var z [2]uint64
	for i := range 16 {
		b := y[i] ^ blk[i]
		hi, lo := &k.t[2*i][b>>4], &k.t[2*i+1][b&15]
		z[0] ^= hi[0] ^ lo[0]
		z[1] ^= hi[1] ^ lo[1]
	}
	binary.BigEndian.PutUint64(y[:8], z[0])
	binary.BigEndian.PutUint64(y[8:], z[1])
}
