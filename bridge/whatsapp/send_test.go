package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/encoding/protojson"

	"waxmpp/bridge"
)

// recordingClient is a real, never connected *whatsmeow.Client (so the
// Build* helpers are whatsmeow's own) whose SendMessage records instead of
// sending.
type recordingClient struct {
	*whatsmeow.Client
	sent []sentMsg
}

func (r *recordingClient) SendMessage(ctx context.Context, to types.JID, m *waE2E.Message, extra ...whatsmeow.SendRequestExtra) (whatsmeow.SendResponse, error) {
	s := sentMsg{to: to, msg: m, id: "3EB0GEN"}
	if len(extra) > 0 && extra[0].ID != "" {
		s.id = extra[0].ID
	}
	r.sent = append(r.sent, s)
	return whatsmeow.SendResponse{ID: s.id, Timestamp: t0}, nil
}

// TestSendGolden builds each outgoing kind with whatsmeow's own helpers and
// compares the protobuf (as protojson, send timestamps cleared) with
// testdata/send/*.golden.json.
func TestSendGolden(t *testing.T) {
	h := newHarness(t, true)
	var rec *recordingClient
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := newAdapter(context.Background(), testConfig(h.db, log, h.events), func(d *wastore.Device) client {
		rec = &recordingClient{Client: whatsmeow.NewClient(d, nil)}
		return rec
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return t0 }
	ctx := context.Background()
	dm := bridge.ChatID(alice.String())
	grp := bridge.ChatID(group.String())
	ownRef := func(chat bridge.ChatID, id string) bridge.MsgRef {
		return bridge.MsgRef{Chat: chat, Sender: bridge.UserID(own.String()), ID: id, FromMe: true}
	}
	cases := []struct {
		name string
		do   func() error
	}{
		{"text", func() error {
			_, _, err := a.SendText(ctx, dm, "*hello* there", bridge.SendOptions{ID: "3EB0FROMXMPP"})
			return err
		}},
		{"text_reply", func() error {
			_, _, err := a.SendText(ctx, grp, "yes", bridge.SendOptions{ReplyTo: &bridge.MsgRef{Chat: grp, Sender: bridge.UserID(bob.String()), ID: "Q1"}, QuotedText: "lunch?"})
			return err
		}},
		{"text_reply_own", func() error {
			_, _, err := a.SendText(ctx, dm, "as I said", bridge.SendOptions{ReplyTo: &bridge.MsgRef{Chat: dm, ID: "Q2", FromMe: true}, QuotedText: "see you at 8"})
			return err
		}},
		{"text_mentions", func() error {
			_, _, err := a.SendText(ctx, grp, "@491702222222 look", bridge.SendOptions{Mentions: []bridge.UserID{bridge.UserID(bob.String())}})
			return err
		}},
		{"location", func() error {
			_, _, err := a.SendLocation(ctx, dm, bridge.Geo{Lat: 52.5163, Lon: 13.3777, Name: "Brandenburger Tor", Address: "Pariser Platz"}, bridge.SendOptions{})
			return err
		}},
		{"edit", func() error { return a.Edit(ctx, ownRef(dm, "E1"), "fixed text") }},
		{"revoke_own", func() error { return a.Revoke(ctx, ownRef(grp, "R1")) }},
		{"revoke_admin", func() error {
			return a.Revoke(ctx, bridge.MsgRef{Chat: grp, Sender: bridge.UserID(bob.String()), ID: "R2"})
		}},
		{"reaction", func() error {
			return a.React(ctx, bridge.MsgRef{Chat: dm, Sender: bridge.UserID(alice.String()), ID: "T1"}, "👍")
		}},
		{"reaction_group", func() error {
			return a.React(ctx, bridge.MsgRef{Chat: grp, Sender: bridge.UserID(bob.String()), ID: "T2"}, "😂")
		}},
		{"reaction_removed", func() error { return a.React(ctx, ownRef(grp, "T3"), "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := len(rec.sent)
			if err := tc.do(); err != nil {
				t.Fatal(err)
			}
			if len(rec.sent) != n+1 {
				t.Fatalf("%d messages sent", len(rec.sent)-n)
			}
			s := rec.sent[n]
			clearTimes(s.msg)
			body, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(s.msg)
			if err != nil {
				t.Fatal(err)
			}
			head, _ := json.Marshal(map[string]string{"to": s.to.String(), "id": string(s.id)})
			var buf bytes.Buffer
			buf.Write(head)
			buf.WriteByte('\n')
			// protojson's whitespace is deliberately unstable; normalize.
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			pretty, _ := json.MarshalIndent(v, "", "  ")
			buf.Write(pretty)
			buf.WriteByte('\n')
			got := buf.Bytes()
			path := filepath.Join("testdata", "send", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
			}
		})
	}
}

// clearTimes zeroes the send-time stamps whatsmeow's builders set.
func clearTimes(m *waE2E.Message) {
	if r := m.GetReactionMessage(); r != nil {
		r.SenderTimestampMS = nil
	}
	if p := m.GetEditedMessage().GetMessage().GetProtocolMessage(); p != nil {
		p.TimestampMS = nil
	}
}

// TestKeysRoundTrip: a revoke or reaction built by whatsmeow for the owner
// (as the phone builds them too) converts back, as the owner's own
// message, to the same target. This pins the converter's reading of
// message keys to whatsmeow's writing of them.
func TestKeysRoundTrip(t *testing.T) {
	h := newHarness(t, true)
	cli := whatsmeow.NewClient(h.a.device(), nil)
	c := testConverter()
	ctx := context.Background()
	dm := bridge.ChatID(alice.String())
	grp := bridge.ChatID(group.String())
	for _, target := range []bridge.MsgRef{
		{Chat: dm, Sender: bridge.UserID(alice.String()), ID: "A"},
		{Chat: dm, Sender: bridge.UserID(own.String()), ID: "B", FromMe: true},
		{Chat: grp, Sender: bridge.UserID(bob.String()), ID: "C"},
		{Chat: grp, Sender: bridge.UserID(own.String()), ID: "D", FromMe: true},
	} {
		chat, _ := types.ParseJID(string(target.Chat))
		info := types.MessageInfo{MessageSource: types.MessageSource{Chat: chat, Sender: own, IsFromMe: true, IsGroup: chat.Server == types.GroupServer}, ID: "X", Timestamp: t0}
		for _, m := range []*waE2E.Message{
			cli.BuildRevoke(chat, keySender(target), target.ID),
			cli.BuildReaction(chat, keySender(target), target.ID, "👍"),
		} {
			evs := c.convert(ctx, &events.Message{Info: info, Message: m})
			if len(evs) != 1 {
				t.Fatalf("%v: %d events", target, len(evs))
			}
			var got bridge.MsgRef
			switch e := evs[0].(type) {
			case *bridge.Revoke:
				got = e.Ref
			case *bridge.Reaction:
				got = e.Target
			}
			if got != target {
				t.Errorf("%T: got %+v, want %+v", evs[0], got, target)
			}
		}
	}
}
