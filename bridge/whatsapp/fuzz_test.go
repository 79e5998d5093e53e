package whatsapp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzConvert feeds random bytes, read as a binary protobuf or as protojson,
// to the converter as a direct and a group message: it must never panic.
// The seeds are the golden inputs.
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "convert", "*.pb.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		var m waE2E.Message
		if err := protojson.Unmarshal(b, &m); err == nil {
			if bin, err := proto.Marshal(&m); err == nil {
				f.Add(bin)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m waE2E.Message
		if proto.Unmarshal(data, &m) != nil {
			m.Reset()
			if protojson.Unmarshal(data, &m) != nil {
				return
			}
		}
		c := testConverter()
		for _, info := range [...]types.MessageInfo{dmInfo("F1", alice, false), dmInfo("F2", own, true), groupInfo("F3", bobLID)} {
			e := &events.Message{Info: info, RawMessage: proto.Clone(&m).(*waE2E.Message)}
			e.UnwrapRaw()
			c.convert(context.Background(), e)
			// History messages arrive still wrapped.
			c.message(context.Background(), &events.Message{Info: e.Info, Message: &m}, true)
		}
	})
}
