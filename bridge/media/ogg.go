package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// OpusInfo is what an Ogg/Opus file's first and last pages say.
type OpusInfo struct {
	Channels   int
	InputRate  int // the original sample rate (informational: Opus runs at 48 kHz)
	PreSkip    int
	Duration   time.Duration
	SerialNo   uint32
	FinalPage  int64 // offset of the page that gave the duration
	HeaderSize int   // first page's size
}

// ErrNotOpus means a file is not an Ogg/Opus stream.
var ErrNotOpus = errors.New("media: not an Ogg/Opus file")

const (
	oggHeader  = 27
	maxOggPage = oggHeader + 255 + 255*255 // the largest page Ogg allows
)

// ReadOpus reads the duration and channels of the Ogg/Opus file in path.
func ReadOpus(path string) (OpusInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return OpusInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return OpusInfo{}, err
	}
	return readOpus(f, st.Size())
}

// oggPage is one parsed page header.
type oggPage struct {
	kind    byte // 1 continued, 2 first, 4 last
	granule uint64
	serial  uint32
	size    int // header, segment table and payload
	payload []byte
}

// parsePage parses the page at the start of b, its CRC checked.
func parsePage(b []byte) (oggPage, error) {
	if len(b) < oggHeader || string(b[:4]) != "OggS" || b[4] != 0 {
		return oggPage{}, fmt.Errorf("%w: no page", ErrNotOpus)
	}
	nseg := int(b[26])
	if len(b) < oggHeader+nseg {
		return oggPage{}, fmt.Errorf("%w: truncated page", ErrNotOpus)
	}
	n := 0
	for _, s := range b[oggHeader : oggHeader+nseg] {
		n += int(s)
	}
	size := oggHeader + nseg + n
	if len(b) < size {
		return oggPage{}, fmt.Errorf("%w: truncated page", ErrNotOpus)
	}
	want := binary.LittleEndian.Uint32(b[22:])
	if oggCRC(b[:size]) != want {
		return oggPage{}, fmt.Errorf("%w: bad page checksum", ErrNotOpus)
	}
	return oggPage{
		kind:    b[5],
		granule: binary.LittleEndian.Uint64(b[6:]),
		serial:  binary.LittleEndian.Uint32(b[14:]),
		size:    size,
		payload: b[oggHeader+nseg : size],
	}, nil
}

func readOpus(r io.ReaderAt, size int64) (OpusInfo, error) {
	first := make([]byte, min(size, maxOggPage))
	if _, err := r.ReadAt(first, 0); err != nil && !errors.Is(err, io.EOF) {
		return OpusInfo{}, err
	}
	p, err := parsePage(first)
	if err != nil {
		return OpusInfo{}, err
	}
	// RFC 7845: the first page holds the ID header alone.
	h := p.payload
	if p.kind&2 == 0 || len(h) < 19 || string(h[:8]) != "OpusHead" || h[8]>>4 != 0 {
		return OpusInfo{}, fmt.Errorf("%w: no OpusHead", ErrNotOpus)
	}
	info := OpusInfo{
		Channels:   int(h[9]),
		PreSkip:    int(binary.LittleEndian.Uint16(h[10:])),
		InputRate:  int(binary.LittleEndian.Uint32(h[12:])),
		SerialNo:   p.serial,
		HeaderSize: p.size,
		FinalPage:  -1,
	}
	if info.Channels == 0 {
		return OpusInfo{}, fmt.Errorf("%w: no channels", ErrNotOpus)
	}
	// The duration is the last page's granule position (48 kHz samples)
	// less the pre-skip. A valid last page lies within the last
	// maxOggPage bytes; look at twice that, from the end.
	start := max(0, size-2*maxOggPage)
	tail := make([]byte, size-start)
	if _, err := r.ReadAt(tail, start); err != nil && !errors.Is(err, io.EOF) {
		return OpusInfo{}, err
	}
	for i := len(tail); i > 0; {
		j := bytes.LastIndex(tail[:i], []byte("OggS"))
		if j < 0 {
			break
		}
		i = j
		q, err := parsePage(tail[j:])
		if err != nil || q.serial != info.SerialNo || q.granule == 1<<64-1 {
			continue // "OggS" inside a payload, another stream, or no packet ends here
		}
		info.FinalPage = start + int64(j)
		if q.granule > uint64(info.PreSkip) {
			samples := q.granule - uint64(info.PreSkip)
			if samples/48000 < 1<<31 {
				info.Duration = time.Duration(samples) * time.Second / 48000
			}
		}
		break
	}
	if info.FinalPage < 0 {
		return OpusInfo{}, fmt.Errorf("%w: no final page", ErrNotOpus)
	}
	return info, nil
}

// oggCRCTable is Ogg's CRC-32: polynomial 0x04c11db7, not reflected,
// initial value 0 (hash/crc32 only does the reflected kind).
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// oggCRC is the checksum of page, its checksum field counted as zero.
func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, b := range page {
		if i >= 22 && i < 26 {
			b = 0
		}
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}
