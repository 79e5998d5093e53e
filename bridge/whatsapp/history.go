package whatsapp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// History sync blobs (a zlib-compressed waHistorySync.HistorySync) reach
// tens of megabytes for a full sync. whatsmeow's DownloadHistorySync reads
// the whole blob and unmarshals it in one piece, several times its size in
// memory; on a Raspberry Pi with 512 MB that is too much. The adapter sets
// ManualHistorySyncDownload, downloads the blob to a temporary file and
// walks the protobuf here field by field: at most one message (or one push
// name, one mapping) is decoded at a time. The small fields around them (a
// conversation's id, name and privacy token; the sync's type, NCT salt and
// settings) are gathered as they come and decoded by protobuf itself.

// maxHistoryRecord bounds one decoded record. A single WebMessageInfo is
// a few kilobytes (thumbnails included); anything larger is skipped.
const maxHistoryRecord = 8 << 20

// maxHistoryMeta bounds the small fields gathered for one conversation or
// for the sync itself; beyond it, further fields are skipped.
const maxHistoryMeta = 1 << 20

// historySink receives what a history sync holds. Any func may be nil.
type historySink struct {
	// message is one message of conversation chat (the chat's JID; "" if
	// the conversation's id came after its messages).
	message func(chat string, m *waWeb.WebMessageInfo)
	// conversation is called after each conversation with its fields
	// except the messages (id, name, privacy token, …).
	conversation func(c *waHistorySync.Conversation)
	pushName     func(p *waHistorySync.Pushname)
	mapping      func(m *waHistorySync.PhoneNumberToLIDMapping)
}

// HistorySync and Conversation field numbers (waHistorySync.proto).
const (
	hsSyncType      = 1
	hsConversations = 2
	hsPushnames     = 7
	hsPNLIDMappings = 15
	convID          = 1
	convMessages    = 2
	convName        = 13
)

// hsMeta are the HistorySync fields gathered whole: small values the
// adapter stores as whatsmeow would (type, chunk order, progress, global
// settings, companion meta nonce, NCT salt). Everything else that is not
// streamed (status messages, stickers, call logs…) is skipped.
var hsMeta = map[protowire.Number]bool{1: true, 5: true, 6: true, 8: true, 16: true, 19: true}

// readHistory walks a decompressed HistorySync protobuf from r and returns
// its small fields (hsMeta).
func readHistory(r io.Reader, sink historySink) (*waHistorySync.HistorySync, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var meta []byte
	decodeMeta := func() (*waHistorySync.HistorySync, error) {
		var hs waHistorySync.HistorySync
		if err := (proto.UnmarshalOptions{AllowPartial: true, DiscardUnknown: true}).Unmarshal(meta, &hs); err != nil {
			return &hs, fmt.Errorf("whatsapp: history: %w", err)
		}
		return &hs, nil
	}
	for {
		num, wt, err := readTag(br)
		if err == io.EOF {
			return decodeMeta()
		} else if err != nil {
			hs, _ := decodeMeta()
			return hs, err
		}
		switch {
		case num == hsConversations && wt == protowire.BytesType:
			n, err := binary.ReadUvarint(br)
			if err != nil {
				return nil, unexpected(err)
			}
			lr := &io.LimitedReader{R: br, N: int64(n)}
			if err := readConversation(bufio.NewReaderSize(lr, 16<<10), sink); err != nil {
				return nil, err
			}
			if lr.N != 0 {
				return nil, io.ErrUnexpectedEOF
			}
		case num == hsPushnames && wt == protowire.BytesType:
			var p waHistorySync.Pushname
			if ok, err := readRecord(br, &p); err != nil {
				return nil, err
			} else if ok && sink.pushName != nil {
				sink.pushName(&p)
			}
		case num == hsPNLIDMappings && wt == protowire.BytesType:
			var m waHistorySync.PhoneNumberToLIDMapping
			if ok, err := readRecord(br, &m); err != nil {
				return nil, err
			} else if ok && sink.mapping != nil {
				sink.mapping(&m)
			}
		case hsMeta[num] && len(meta) < maxHistoryMeta:
			if meta, err = appendField(meta, br, num, wt); err != nil {
				return nil, err
			}
		default:
			if err := skipField(br, wt); err != nil {
				return nil, err
			}
		}
	}
}

// readConversation reads one Conversation: its messages one by one, the
// rest gathered and decoded at its end.
func readConversation(br *bufio.Reader, sink historySink) error {
	var meta []byte
	var id string
	for {
		num, wt, err := readTag(br)
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		switch {
		case num == convMessages && wt == protowire.BytesType:
			var m waHistorySync.HistorySyncMsg
			if ok, err := readRecord(br, &m); err != nil {
				return err
			} else if ok && m.GetMessage() != nil && sink.message != nil {
				sink.message(id, m.GetMessage())
			}
		case len(meta) < maxHistoryMeta:
			start := len(meta)
			if meta, err = appendField(meta, br, num, wt); err != nil {
				return err
			}
			if num == convID && wt == protowire.BytesType {
				if v, n := protowire.ConsumeBytes(meta[start+protowire.SizeTag(num):]); n > 0 {
					id = string(v)
				}
			}
		default:
			if err := skipField(br, wt); err != nil {
				return err
			}
		}
	}
	if sink.conversation != nil {
		var c waHistorySync.Conversation
		// A malformed field leaves what decoded before it.
		_ = (proto.UnmarshalOptions{AllowPartial: true, DiscardUnknown: true}).Unmarshal(meta, &c)
		sink.conversation(&c)
	}
	return nil
}

func readTag(br *bufio.Reader) (protowire.Number, protowire.Type, error) {
	v, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, 0, err // io.EOF only at a field boundary
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, errors.New("whatsapp: history: invalid field number")
	}
	return num, typ, nil
}

// appendField copies one field (its tag and value) from br to b. A bytes
// field longer than maxHistoryRecord is skipped instead.
func appendField(b []byte, br *bufio.Reader, num protowire.Number, wt protowire.Type) ([]byte, error) {
	switch wt {
	case protowire.VarintType:
		v, err := binary.ReadUvarint(br)
		if err != nil {
			return b, unexpected(err)
		}
		return protowire.AppendVarint(protowire.AppendTag(b, num, wt), v), nil
	case protowire.Fixed32Type, protowire.Fixed64Type:
		n := 4
		if wt == protowire.Fixed64Type {
			n = 8
		}
		v := make([]byte, n)
		if _, err := io.ReadFull(br, v); err != nil {
			return b, unexpected(err)
		}
		return append(protowire.AppendTag(b, num, wt), v...), nil
	case protowire.BytesType:
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return b, unexpected(err)
		}
		if n > maxHistoryRecord {
			return b, discard(br, n)
		}
		v := make([]byte, n)
		if _, err := io.ReadFull(br, v); err != nil {
			return b, unexpected(err)
		}
		return protowire.AppendBytes(protowire.AppendTag(b, num, wt), v), nil
	}
	return b, fmt.Errorf("whatsapp: history: unsupported wire type %d", wt)
}

// readRecord decodes one length-delimited message into m; ok is false if
// it was larger than maxHistoryRecord or malformed (and was skipped).
func readRecord(br *bufio.Reader, m proto.Message) (ok bool, err error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return false, unexpected(err)
	}
	if n > maxHistoryRecord {
		return false, discard(br, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return false, unexpected(err)
	}
	return proto.Unmarshal(b, m) == nil, nil
}

func skipField(br *bufio.Reader, wt protowire.Type) error {
	switch wt {
	case protowire.VarintType:
		_, err := binary.ReadUvarint(br)
		return unexpected(err)
	case protowire.Fixed32Type:
		return discard(br, 4)
	case protowire.Fixed64Type:
		return discard(br, 8)
	case protowire.BytesType:
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return unexpected(err)
		}
		return discard(br, n)
	}
	return fmt.Errorf("whatsapp: history: unsupported wire type %d", wt)
}

func discard(br *bufio.Reader, n uint64) error {
	_, err := io.CopyN(io.Discard, br, int64(n))
	return unexpected(err)
}

// unexpected turns an EOF inside a field into ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
