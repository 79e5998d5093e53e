package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message records. Version 1 (schema 2) and 2 (schema 4, with a room id)
// hold every field as a plain string and the time as unix nanoseconds;
// they are read still (a record that schema 6's migration could not decode
// is kept as it was). Version 3 (schema 6) is what is written: about 40
// bytes and the excerpt for a relayed message, against 110 and the excerpt.
//
//	3, flags, chat, [sender], WhatsApp id, XMPP id, excerpt, [time], [room id]
//
// The ids are packed strings (packStr): WhatsApp's JIDs are numbers with a
// known server, its message ids and ours are hex.
const (
	msgRecordV1 = 1
	msgRecordV2 = 2
	msgRecordV3 = 3

	flagSenderIsChat = 1 << 0 // the sender is the chat (a direct chat): not stored
	flagNoSender     = 1 << 1 // the sender is "" (the owner's own)
	flagRoom         = 1 << 2 // a room id follows the time
	flagTime         = 1 << 3 // a time: unix seconds (varint), nanoseconds (uvarint)
)

func encodeMessage(m Message) []byte {
	var flags byte
	switch m.WA.Sender {
	case "":
		flags |= flagNoSender
	case m.WA.Chat:
		flags |= flagSenderIsChat
	}
	if m.RoomID != "" {
		flags |= flagRoom
	}
	if !m.Time.IsZero() {
		flags |= flagTime
	}
	e := enc{b: make([]byte, 0, 48+len(m.Excerpt))}
	e.b = append(e.b, msgRecordV3, flags)
	e.b = packStr(e.b, m.WA.Chat)
	if flags&(flagNoSender|flagSenderIsChat) == 0 {
		e.b = packStr(e.b, m.WA.Sender)
	}
	e.b = packStr(e.b, m.WA.ID)
	e.b = packStr(e.b, m.XMPPID)
	e.str(m.Excerpt)
	if flags&flagTime != 0 {
		e.int(m.Time.Unix())
		e.uint(uint64(m.Time.Nanosecond()))
	}
	if flags&flagRoom != 0 {
		e.b = packStr(e.b, m.RoomID)
	}
	return e.b
}

func decodeMessage(bucket, key, v []byte) (Message, error) {
	d := dec{b: v}
	var m Message
	switch ver := d.byte1(); {
	case d.err != "":
	case ver == msgRecordV1 || ver == msgRecordV2:
		m.WA.Chat = d.str()
		m.WA.Sender = d.str()
		m.WA.ID = d.str()
		m.XMPPID = d.str()
		m.Excerpt = d.str()
		m.Time = d.time()
		if ver == msgRecordV2 {
			m.RoomID = d.str()
		}
	case ver == msgRecordV3:
		flags := d.byte1()
		m.WA.Chat = d.packed()
		switch {
		case flags&flagNoSender != 0:
		case flags&flagSenderIsChat != 0:
			m.WA.Sender = m.WA.Chat
		default:
			m.WA.Sender = d.packed()
		}
		m.WA.ID = d.packed()
		m.XMPPID = d.packed()
		m.Excerpt = d.str()
		if flags&flagTime != 0 {
			s := d.int()
			ns := d.uint()
			if ns >= 1e9 {
				d.fail("bad nanoseconds")
			}
			m.Time = time.Unix(s, int64(ns))
		}
		if flags&flagRoom != 0 {
			m.RoomID = d.packed()
		}
	default:
		return Message{}, corrupt(bucket, key, fmt.Sprintf("unknown message record version %d", ver))
	}
	if d.err != "" {
		return Message{}, corrupt(bucket, key, d.err)
	}
	return m, nil
}

// A packed string is a tag byte, affix<<2 | body, and its body:
//
//	body 0: uvarint length, bytes
//	body 1: decimal digits: their count (1–19), uvarint value
//	body 2: upper-case hex (even length): uvarint byte count, bytes
//	body 3: lower-case hex, the same
//
// affix is a prefix or suffix the body goes with (packAffixes).
const (
	bodyRaw = iota
	bodyDecimal
	bodyHexUpper
	bodyHexLower
)

// packAffixes are the affixes by number; 0 is none. A "-" ends a prefix.
var packAffixes = []string{"", "@s.whatsapp.net", "@g.us", "@lid", "wa-", "@broadcast", "@newsletter"}

func packStr(b []byte, s string) []byte {
	affix, body := 0, s
	for i, a := range packAffixes[1:] {
		if strings.HasSuffix(a, "-") {
			if rest, ok := strings.CutPrefix(s, a); ok && rest != "" {
				affix, body = i+1, rest
				break
			}
		} else if rest, ok := strings.CutSuffix(s, a); ok && rest != "" {
			affix, body = i+1, rest
			break
		}
	}
	tag := byte(affix << 2)
	switch kind := bodyKind(body); {
	case affix != 0 && kind == bodyRaw:
		// Only a packed body is worth its affix.
		return appendRaw(append(b, bodyRaw), s)
	case kind == bodyDecimal:
		v, _ := strconv.ParseUint(body, 10, 64)
		b = append(b, tag|bodyDecimal, byte(len(body)))
		return appendUvarint(b, v)
	case kind == bodyHexUpper || kind == bodyHexLower:
		// bodyKind checked the digits and the even length.
		b = append(b, tag|byte(kind))
		b = appendUvarint(b, uint64(len(body)/2))
		for i := 0; i+1 < len(body); i += 2 {
			b = append(b, hexDigit(body[i])<<4|hexDigit(body[i+1]))
		}
		return b
	}
	return appendRaw(append(b, bodyRaw), s)
}

// hexDigit is the value of a hex digit (either case).
func hexDigit(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// bodyKind is how s packs.
func bodyKind(s string) int {
	if s == "" {
		return bodyRaw
	}
	digits, upper, lower := len(s) <= 19, len(s)%2 == 0, len(s)%2 == 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
		case 'A' <= c && c <= 'F':
			digits, lower = false, false
		case 'a' <= c && c <= 'f':
			digits, upper = false, false
		default:
			return bodyRaw
		}
	}
	switch {
	case digits:
		return bodyDecimal
	case upper:
		return bodyHexUpper
	case lower:
		return bodyHexLower
	}
	return bodyRaw
}

func appendRaw(b []byte, s string) []byte { return append(appendUvarint(b, uint64(len(s))), s...) }

// appendUvarint is enc.uint on b (without an enc, which would move b to
// the heap: index lookups pack ids into a stack buffer).
func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// packed reads a packed string.
func (d *dec) packed() string {
	tag := d.byte1()
	if d.err != "" {
		return ""
	}
	affix, body := int(tag>>2), tag&3
	if affix >= len(packAffixes) || (affix != 0 && body == bodyRaw) {
		d.fail(fmt.Sprintf("bad string tag %#x", tag))
		return ""
	}
	var s string
	switch body {
	case bodyRaw:
		return d.str()
	case bodyDecimal:
		n := int(d.byte1())
		v := d.uint()
		digits := strconv.FormatUint(v, 10)
		if d.err != "" || n < 1 || n > 19 || len(digits) > n {
			d.fail("bad decimal string")
			return ""
		}
		s = strings.Repeat("0", n-len(digits)) + digits
	default:
		p := d.bytes()
		if d.err != "" {
			return ""
		}
		if len(p) == 0 {
			d.fail("empty hex string")
			return ""
		}
		s = hex.EncodeToString(p)
		if body == bodyHexUpper {
			s = strings.ToUpper(s)
		}
	}
	if a := packAffixes[affix]; strings.HasSuffix(a, "-") {
		return a + s
	} else {
		return s + a
	}
}

// packedSpan skips a packed string and returns its bytes, tag included.
func (d *dec) packedSpan() []byte {
	start := d.b
	tag := d.byte1()
	if d.err != "" {
		return nil
	}
	if tag&3 == bodyDecimal {
		d.byte1()
		d.uint()
	} else {
		d.bytes()
	}
	if d.err != "" {
		return nil
	}
	return start[: len(start)-len(d.b) : len(start)-len(d.b)]
}
