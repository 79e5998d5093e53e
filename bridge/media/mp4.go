package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MP4Info is what the header (the moov box) of an MP4, M4A or QuickTime
// file says. Only the boxes named in readMP4 are read, each a few dozen
// bytes: the media data is skipped, wherever it is.
type MP4Info struct {
	Brand         string // ftyp major brand ("isom", "M4A ", "qt  "); "" without ftyp
	Duration      time.Duration
	Video, Audio  bool   // has a video, an audio track
	Width, Height int    // the first video track as shown (rotation applied)
	VideoCodec    string // its sample entry: "avc1", "hvc1", "mp4v"…
	AudioCodec    string // the first audio track's: "mp4a", "Opus", "alac"…
	Channels      int
	SampleRate    int
	FastStart     bool // moov comes before the media data: playable while it loads
}

// ErrNotMP4 means a file is not an ISO base media (MP4) file.
var ErrNotMP4 = errors.New("media: not an MP4 file")

// maxBoxes bounds how many boxes readMP4 looks at, so that a crafted file
// of millions of empty boxes costs nothing.
const maxBoxes = 4096

// ReadMP4 reads the header of the MP4/M4A/MOV file in path.
func ReadMP4(path string) (MP4Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return MP4Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return MP4Info{}, err
	}
	return readMP4(f, st.Size())
}

type mp4Reader struct {
	r     io.ReaderAt
	boxes int
	info  MP4Info
	// per track, while in one trak box
	handler              string
	tkW, tkH             int
	mdScale, mdDuration  uint64
	entry                string
	channels, sampleRate int
	maxTrack             time.Duration
}

func readMP4(r io.ReaderAt, size int64) (MP4Info, error) {
	m := &mp4Reader{r: r}
	var moov, mdat, first bool
	err := m.each(0, size, func(typ string, off, n, hdr int64) error {
		if !first {
			first = true
			switch typ {
			case "ftyp", "moov", "mdat", "wide", "free", "skip", "pnot":
			default:
				return ErrNotMP4
			}
		}
		switch typ {
		case "ftyp":
			b, err := m.read(off+hdr, 4)
			if err != nil {
				return err
			}
			m.info.Brand = string(b)
		case "mdat":
			mdat = true
		case "moov":
			if moov {
				return nil // one is enough
			}
			moov = true
			m.info.FastStart = !mdat
			return m.moov(off+hdr, off+n)
		}
		return nil
	})
	if err != nil {
		return MP4Info{}, err
	}
	if !moov {
		return MP4Info{}, fmt.Errorf("%w: no moov box", ErrNotMP4)
	}
	if m.info.Duration == 0 {
		m.info.Duration = m.maxTrack
	}
	return m.info, nil
}

// each calls fn for every box in [start, end): its type, offset, size
// and header length.
func (m *mp4Reader) each(start, end int64, fn func(typ string, off, n, hdr int64) error) error {
	for off := start; off+8 <= end; {
		m.boxes++
		if m.boxes > maxBoxes {
			return fmt.Errorf("%w: too many boxes", ErrNotMP4)
		}
		b, err := m.read(off, 8)
		if err != nil {
			return err
		}
		n, hdr := int64(binary.BigEndian.Uint32(b)), int64(8)
		typ := string(b[4:8])
		switch n {
		case 0: // to the end
			n = end - off
		case 1:
			l, err := m.read(off+8, 8)
			if err != nil {
				return err
			}
			u := binary.BigEndian.Uint64(l)
			if u > uint64(end-off) {
				return fmt.Errorf("%w: box %q overruns", ErrNotMP4, typ)
			}
			n, hdr = int64(u), 16
		}
		if n < hdr || n > end-off {
			return fmt.Errorf("%w: box %q has a bad size", ErrNotMP4, typ)
		}
		if err := fn(typ, off, n, hdr); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// read reads n bytes at off; short reads are a malformed file.
func (m *mp4Reader) read(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := m.r.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated", ErrNotMP4)
		}
		return nil, err
	}
	return b, nil
}

// full reads a full box's version and payload (at most n bytes of it; a
// shorter box gives what it has).
func (m *mp4Reader) full(off, end int64, n int) (version byte, b []byte, err error) {
	n = int(min(int64(n), end-off))
	if n < 4 {
		return 0, nil, fmt.Errorf("%w: short box", ErrNotMP4)
	}
	b, err = m.read(off, n)
	if err != nil {
		return 0, nil, err
	}
	return b[0], b[4:], nil
}

func (m *mp4Reader) moov(start, end int64) error {
	return m.each(start, end, func(typ string, off, n, hdr int64) error {
		switch typ {
		case "mvhd":
			v, b, err := m.full(off+hdr, off+n, 32)
			if err != nil {
				return err
			}
			var scale, dur uint64
			if v == 1 {
				if len(b) < 28 {
					return fmt.Errorf("%w: short mvhd", ErrNotMP4)
				}
				scale, dur = uint64(binary.BigEndian.Uint32(b[16:])), binary.BigEndian.Uint64(b[20:])
			} else {
				if len(b) < 16 {
					return fmt.Errorf("%w: short mvhd", ErrNotMP4)
				}
				scale, dur = uint64(binary.BigEndian.Uint32(b[8:])), uint64(binary.BigEndian.Uint32(b[12:]))
			}
			m.info.Duration = duration(dur, scale)
		case "trak":
			m.handler, m.entry, m.tkW, m.tkH, m.mdScale, m.mdDuration, m.channels, m.sampleRate = "", "", 0, 0, 0, 0, 0, 0
			if err := m.container(off+hdr, off+n, "trak"); err != nil {
				return err
			}
			m.track()
		}
		return nil
	})
}

// container walks a trak and the boxes inside it that lead to its
// header (tkhd), media header (mdhd), handler (hdlr) and sample entry.
func (m *mp4Reader) container(start, end int64, parent string) error {
	return m.each(start, end, func(typ string, off, n, hdr int64) error {
		switch typ {
		case "mdia", "minf", "stbl":
			return m.container(off+hdr, off+n, typ)
		case "tkhd":
			v, b, err := m.full(off+hdr, off+n, 100)
			if err != nil {
				return err
			}
			at := 72 // after times, id, duration, reserved, layer…, matrix
			if v == 1 {
				at = 84
			}
			if len(b) < at+8 {
				return nil // no size: not needed for audio
			}
			mat := at - 36
			w := int(binary.BigEndian.Uint32(b[at:]) >> 16)
			h := int(binary.BigEndian.Uint32(b[at+4:]) >> 16)
			a, bb := int32(binary.BigEndian.Uint32(b[mat:])), int32(binary.BigEndian.Uint32(b[mat+4:]))
			if a == 0 && bb != 0 {
				w, h = h, w // rotated by 90° or 270°: shown the other way round
			}
			m.tkW, m.tkH = w, h
		case "mdhd":
			v, b, err := m.full(off+hdr, off+n, 32)
			if err != nil {
				return err
			}
			if v == 1 {
				if len(b) < 28 {
					return fmt.Errorf("%w: short mdhd", ErrNotMP4)
				}
				m.mdScale, m.mdDuration = uint64(binary.BigEndian.Uint32(b[16:])), binary.BigEndian.Uint64(b[20:])
			} else {
				if len(b) < 16 {
					return fmt.Errorf("%w: short mdhd", ErrNotMP4)
				}
				m.mdScale, m.mdDuration = uint64(binary.BigEndian.Uint32(b[8:])), uint64(binary.BigEndian.Uint32(b[12:]))
			}
		case "hdlr":
			if parent != "mdia" {
				return nil // QuickTime's data handler in minf ("alis")
			}
			_, b, err := m.full(off+hdr, off+n, 12)
			if err != nil {
				return err
			}
			if len(b) >= 8 {
				m.handler = string(b[4:8])
			}
		case "stsd":
			_, b, err := m.full(off+hdr, off+n, 4+stsdRead)
			if err != nil {
				return err
			}
			// entry count, then the first sample entry (a box).
			if len(b) < 12 || binary.BigEndian.Uint32(b) == 0 {
				return nil
			}
			m.sampleEntry(b[4:])
		}
		return nil
	})
}

// stsdRead is how much of a sample description is read: an audio
// entry's header and its esds.
const stsdRead = 256

// sampleEntry reads the first sample entry e of a track (possibly cut
// short): its codec and, for sound, channels and rate.
func (m *mp4Reader) sampleEntry(e []byte) {
	if n := binary.BigEndian.Uint32(e); int(n) < len(e) && n >= 8 {
		e = e[:n]
	}
	m.entry = string(e[4:8])
	// An audio sample entry: reserved, data reference, version,
	// revision, vendor, then channel count … sample rate (16.16).
	if len(e) < 36 {
		return
	}
	m.channels = int(binary.BigEndian.Uint16(e[24:]))
	m.sampleRate = int(binary.BigEndian.Uint32(e[32:]) >> 16)
	// ISO files write channel count 2 whatever the stream has; the AAC
	// decoder configuration (in esds) tells. QuickTime sound entries of
	// version 1 and 2 have longer headers.
	children := 36
	switch binary.BigEndian.Uint16(e[16:]) {
	case 1:
		children += 16
	case 2:
		children += 36
	}
	for off := children; off+8 <= len(e); {
		n := int(binary.BigEndian.Uint32(e[off:]))
		if n < 8 || off+n > len(e) {
			n = len(e) - off // cut short by stsdRead: look at what is there
		}
		if string(e[off+4:off+8]) == "esds" {
			if ch := aacChannels(e[off+8 : off+n]); ch > 0 {
				m.channels = ch
			}
			return
		}
		off += n
	}
}

// aacChannels reads the channel configuration from an esds box's payload
// (ISO 14496-1 descriptors, 14496-3 AudioSpecificConfig); 0 if unknown.
func aacChannels(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	b = b[4:] // version and flags
	// desc reads one descriptor header: tag, and a size of 1–4 bytes.
	desc := func(b []byte) (tag byte, body []byte, ok bool) {
		if len(b) < 2 {
			return 0, nil, false
		}
		tag, b = b[0], b[1:]
		size := 0
		for i := 0; i < 4; i++ {
			if len(b) == 0 {
				return 0, nil, false
			}
			c := b[0]
			b = b[1:]
			size = size<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		return tag, b[:min(size, len(b))], true
	}
	tag, es, ok := desc(b)
	if !ok || tag != 3 || len(es) < 3 {
		return 0
	}
	flags := es[2]
	es = es[3:]
	if flags&0x80 != 0 { // stream dependence
		es = es[min(2, len(es)):]
	}
	if flags&0x40 != 0 && len(es) > 0 { // URL
		es = es[min(1+int(es[0]), len(es)):]
	}
	if flags&0x20 != 0 { // OCR stream
		es = es[min(2, len(es)):]
	}
	tag, dc, ok := desc(es)
	if !ok || tag != 4 || len(dc) < 13 || dc[0] != 0x40 { // 0x40: MPEG-4 audio
		return 0
	}
	tag, asc, ok := desc(dc[13:])
	if !ok || tag != 5 || len(asc) < 2 {
		return 0
	}
	// 5 bits object type, 4 bits frequency index (15: 24 more bits of
	// frequency), 4 bits channel configuration.
	bits := uint64(0)
	for i := 0; i < 8; i++ {
		bits <<= 8
		if i < len(asc) {
			bits |= uint64(asc[i])
		}
	}
	pos := 5
	if bits>>(64-5) == 31 { // escaped object type
		pos += 6
	}
	freq := bits >> (64 - pos - 4) & 15
	pos += 4
	if freq == 15 {
		pos += 24
	}
	if len(asc)*8 < pos+4 {
		return 0
	}
	return int(bits >> (64 - pos - 4) & 15)
}

// track files what the trak just walked said.
func (m *mp4Reader) track() {
	if d := duration(m.mdDuration, m.mdScale); d > m.maxTrack {
		m.maxTrack = d
	}
	switch m.handler {
	case "vide":
		if !m.info.Video {
			m.info.Video = true
			m.info.Width, m.info.Height = m.tkW, m.tkH
			m.info.VideoCodec = m.entry
		}
	case "soun":
		if !m.info.Audio {
			m.info.Audio = true
			m.info.AudioCodec = m.entry
			m.info.Channels, m.info.SampleRate = m.channels, m.sampleRate
		}
	}
}

// duration is units of 1/scale seconds, 0 when unknown (QuickTime and
// fragmented files write all ones) or absurd.
func duration(units, scale uint64) time.Duration {
	if scale == 0 || units == 0 || units == 1<<32-1 || units == 1<<64-1 {
		return 0
	}
	s := units / scale
	if s > 1<<31 {
		return 0
	}
	return time.Duration(s)*time.Second + time.Duration((units%scale)*uint64(time.Second)/scale)
}
