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
// name, one mapping) is decoded at a time.

// maxHistoryRecord bounds one decoded record. A single WebMessageInfo is
// a few kilobytes (thumbnails included); anything larger is skipped.
const maxHistoryRecord = 8 << 20

// historySink receives what a history sync holds. Any func may be nil.
type historySink struct {
	// message is one message of conversation chat (the chat's JID; "" if
	// the conversation's id came after its messages).
	message func(chat string, m *waWeb.WebMessageInfo)
	// conversation is called after each conversation's fields, with its
	// name ("" when none).
	conversation func(id, name string)
	pushName     func(id, name string)
	mapping      func(pn, lid string)
}

// HistorySync field numbers (waHistorySync.proto).
const (
	hsSyncType      = 1
	hsConversations = 2
	hsPushnames     = 7
	hsPNLIDMappings = 15
	convID          = 1
	convMessages    = 2
	convName        = 13
	hsMsgMessage    = 1
)

// readHistory walks a decompressed HistorySync protobuf from r.
func readHistory(r io.Reader, sink historySink) (waHistorySync.HistorySync_HistorySyncType, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var typ waHistorySync.HistorySync_HistorySyncType
	for {
		num, wt, err := readTag(br)
		if err == io.EOF {
			return typ, nil
		} else if err != nil {
			return typ, err
		}
		switch {
		case num == hsSyncType && wt == protowire.VarintType:
			v, err := binary.ReadUvarint(br)
			if err != nil {
				return typ, unexpected(err)
			}
			typ = waHistorySync.HistorySync_HistorySyncType(v)
		case num == hsConversations && wt == protowire.BytesType:
			n, err := binary.ReadUvarint(br)
			if err != nil {
				return typ, unexpected(err)
			}
			lr := &io.LimitedReader{R: br, N: int64(n)}
			if err := readConversation(bufio.NewReaderSize(lr, 16<<10), sink); err != nil {
				return typ, err
			}
			if lr.N != 0 {
				return typ, io.ErrUnexpectedEOF
			}
		case num == hsPushnames && wt == protowire.BytesType:
			var p waHistorySync.Pushname
			if ok, err := readRecord(br, &p); err != nil {
				return typ, err
			} else if ok && sink.pushName != nil {
				sink.pushName(p.GetID(), p.GetPushname())
			}
		case num == hsPNLIDMappings && wt == protowire.BytesType:
			var m waHistorySync.PhoneNumberToLIDMapping
			if ok, err := readRecord(br, &m); err != nil {
				return typ, err
			} else if ok && sink.mapping != nil {
				sink.mapping(m.GetPnJID(), m.GetLidJID())
			}
		default:
			if err := skipField(br, wt); err != nil {
				return typ, err
			}
		}
	}
}

func readConversation(br *bufio.Reader, sink historySink) error {
	var id, name string
	for {
		num, wt, err := readTag(br)
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		switch {
		case (num == convID || num == convName) && wt == protowire.BytesType:
			b, err := readBytes(br, 4096)
			if err != nil {
				return err
			}
			if num == convID {
				id = string(b)
			} else {
				name = string(b)
			}
		case num == convMessages && wt == protowire.BytesType:
			var m waHistorySync.HistorySyncMsg
			if ok, err := readRecord(br, &m); err != nil {
				return err
			} else if ok && m.GetMessage() != nil && sink.message != nil {
				sink.message(id, m.GetMessage())
			}
		default:
			if err := skipField(br, wt); err != nil {
				return err
			}
		}
	}
	if sink.conversation != nil {
		sink.conversation(id, name)
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

func readBytes(br *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, unexpected(err)
	}
	if n > max {
		return nil, discard(br, n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return b, unexpected(err)
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
