package whatsapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	own    = types.NewJID("491701111111", types.DefaultUserServer)
	alice  = types.NewJID("491709999999", types.DefaultUserServer)
	bob    = types.NewJID("491702222222", types.DefaultUserServer)
	bobLID = types.NewJID("100000000000002", types.HiddenUserServer)
	ownLID = types.NewJID("100000000000001", types.HiddenUserServer)
	group  = types.NewJID("120363000000000001", types.GroupServer)
	t0     = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
)

// fakeDecrypter opens message-secret payloads as the phone would have
// produced them for the golden cases.
type fakeDecrypter struct{}

func (fakeDecrypter) DecryptPollVote(ctx context.Context, e *events.Message) (*waE2E.PollVoteMessage, error) {
	h := sha256.Sum256([]byte("Sushi"))
	return &waE2E.PollVoteMessage{SelectedOptions: [][]byte{h[:], []byte("unknown-option-hash")}}, nil
}

func (fakeDecrypter) DecryptReaction(ctx context.Context, e *events.Message) (*waE2E.ReactionMessage, error) {
	k := e.Message.GetEncReactionMessage().GetTargetMessageKey()
	return &waE2E.ReactionMessage{Key: k, Text: proto.String("❤️"), SenderTimestampMS: proto.Int64(t0.UnixMilli())}, nil
}

func (fakeDecrypter) DecryptSecretEncryptedMessage(ctx context.Context, e *events.Message) (*waE2E.Message, error) {
	if e.Info.ID == "undecryptable" {
		return nil, errors.New("no secret")
	}
	return &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
		EditedMessage: &waE2E.Message{Conversation: proto.String("edited in secret")},
	}}, nil
}

type memPolls map[string][]string

func (m memPolls) putPoll(chat, id string, o []string)  { m[chat+"/"+id] = o }
func (m memPolls) pollOptions(chat, id string) []string { return m[chat+"/"+id] }

func testConverter() *converter {
	p := memPolls{group.String() + "/3EB0POLL0001": {"Pizza", "Sushi"}}
	return &converter{
		self:    func() types.JID { return own },
		selfLID: func() types.JID { return ownLID },
		dec:     fakeDecrypter{},
		polls:   p,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func loadProto(t testing.TB, name string) *waE2E.Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "convert", name+".pb.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m waE2E.Message
	if err := protojson.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s.pb.json: %v", name, err)
	}
	return &m
}

func dmInfo(id string, from types.JID, fromMe bool) types.MessageInfo {
	chat := from
	if fromMe {
		chat = alice
	}
	return types.MessageInfo{
		MessageSource: types.MessageSource{Chat: chat, Sender: from, IsFromMe: fromMe},
		ID:            id, PushName: "Alice", Timestamp: t0, Type: "text",
	}
}

func groupInfo(id string, from types.JID) types.MessageInfo {
	return types.MessageInfo{
		MessageSource: types.MessageSource{Chat: group, Sender: from, IsGroup: true, IsFromMe: from == own},
		ID:            id, PushName: "Bob", Timestamp: t0, Type: "text",
	}
}

// msg builds the event as whatsmeow dispatches it: RawMessage decoded, then
// UnwrapRaw.
func msg(t testing.TB, file string, info types.MessageInfo) *events.Message {
	e := &events.Message{Info: info, RawMessage: loadProto(t, file)}
	return e.UnwrapRaw()
}

type convertCase struct {
	name string
	evt  func(t testing.TB) any
}

func convertCases() []convertCase {
	dm := func(file string) func(t testing.TB) any {
		return func(t testing.TB) any { return msg(t, file, dmInfo("3EB0"+file, alice, false)) }
	}
	grp := func(file string) func(t testing.TB) any {
		return func(t testing.TB) any { return msg(t, file, groupInfo("3EB0"+file, bob)) }
	}
	mine := func(file string) func(t testing.TB) any {
		return func(t testing.TB) any { return msg(t, file, dmInfo("3EB0"+file, own, true)) }
	}
	v := func(e any) func(t testing.TB) any { return func(testing.TB) any { return e } }
	sender := bob
	senderPN := bob
	return []convertCase{
		{"text", dm("text")},
		{"text_from_phone", mine("text")},
		{"extended_link", dm("extended_link")},
		{"extended_mention", grp("extended_mention")},
		{"reply", dm("reply")},
		{"reply_to_own", dm("reply_to_own")},
		{"forwarded", dm("forwarded")},
		{"image", dm("image")},
		{"video", grp("video")},
		{"audio", dm("audio")},
		{"voice", dm("voice")},
		{"document", dm("document")},
		{"sticker", dm("sticker")},
		{"location", dm("location")},
		{"live_location", dm("live_location")},
		{"contact", dm("contact")},
		{"contacts", dm("contacts")},
		{"poll_v1", grp("poll_v1")},
		{"poll_v2", grp("poll_v2")},
		{"poll_v3", grp("poll_v3")},
		{"future_proof_poll", grp("future_proof_poll")},
		{"poll_vote", func(t testing.TB) any { return msg(t, "poll_vote", groupInfo("3EB0VOTE", alice)) }},
		{"reaction", dm("reaction")},
		{"reaction_removed", grp("reaction_removed")},
		{"reaction_encrypted", grp("reaction_encrypted")},
		{"revoke", dm("revoke")},
		{"revoke_admin", grp("revoke_admin")},
		{"edit", dm("edit")},
		{"edit_from_phone", mine("edit")},
		{"edit_secret", dm("edit_secret")},
		{"edit_secret_undecryptable", func(t testing.TB) any { return msg(t, "edit_secret", dmInfo("undecryptable", alice, false)) }},
		{"ephemeral_setting", dm("ephemeral_setting")},
		{"view_once", dm("view_once")},
		{"ephemeral", dm("ephemeral")},
		{"unknown_kind", dm("unknown_kind")},
		{"history_wrapped", func(t testing.TB) any {
			// History-sync messages are not unwrapped by whatsmeow.
			return &events.Message{Info: dmInfo("3EB0hist", alice, false), Message: loadProto(t, "ephemeral")}
		}},
		{"lid_sender", func(t testing.TB) any {
			info := groupInfo("3EB0lid", bobLID)
			info.SenderAlt = bob
			info.AddressingMode = types.AddressingModeLID
			return msg(t, "text", info)
		}},
		{"lid_direct", func(t testing.TB) any {
			info := types.MessageInfo{MessageSource: types.MessageSource{
				Chat: bobLID, Sender: bobLID, SenderAlt: bob, RecipientAlt: own,
			}, ID: "3EB0lidd", Timestamp: t0, PushName: "Bob"}
			return msg(t, "text", info)
		}},
		{"retry", func(t testing.TB) any {
			e := msg(t, "text", dmInfo("3EB0retry", alice, false))
			e.RetryCount = 1
			return e
		}},
		{"undecryptable", v(&events.UndecryptableMessage{Info: dmInfo("3EB0undec", alice, false)})},
		{"undecryptable_hidden", v(&events.UndecryptableMessage{Info: dmInfo("3EB0hide", alice, false), DecryptFailMode: events.DecryptFailHide})},
		{"undecryptable_view_once", v(&events.UndecryptableMessage{Info: dmInfo("3EB0vo", alice, false), IsUnavailable: true, UnavailableType: events.UnavailableTypeViewOnce})},
		{"undecryptable_unavailable", v(&events.UndecryptableMessage{Info: dmInfo("3EB0un", alice, false), IsUnavailable: true})},
		{"receipt_delivered", v(&events.Receipt{MessageSource: types.MessageSource{Chat: alice, Sender: alice}, MessageIDs: []string{"A1", "A2"}, Timestamp: t0, Type: types.ReceiptTypeDelivered})},
		{"receipt_read_group", v(&events.Receipt{MessageSource: types.MessageSource{Chat: group, Sender: bobLID, SenderAlt: bob, IsGroup: true}, MessageIDs: []string{"G1"}, Timestamp: t0, Type: types.ReceiptTypeRead})},
		{"receipt_played", v(&events.Receipt{MessageSource: types.MessageSource{Chat: alice, Sender: alice}, MessageIDs: []string{"V1"}, Timestamp: t0, Type: types.ReceiptTypePlayed})},
		{"receipt_read_self", v(&events.Receipt{MessageSource: types.MessageSource{Chat: alice, Sender: own, IsFromMe: true}, MessageIDs: []string{"I1"}, Timestamp: t0, Type: types.ReceiptTypeReadSelf})},
		{"typing", v(&events.ChatPresence{MessageSource: types.MessageSource{Chat: alice, Sender: alice}, State: types.ChatPresenceComposing})},
		{"recording", v(&events.ChatPresence{MessageSource: types.MessageSource{Chat: group, Sender: bob, IsGroup: true}, State: types.ChatPresenceComposing, Media: types.ChatPresenceMediaAudio})},
		{"paused", v(&events.ChatPresence{MessageSource: types.MessageSource{Chat: alice, Sender: alice}, State: types.ChatPresencePaused})},
		{"presence_online", v(&events.Presence{From: alice})},
		{"presence_offline", v(&events.Presence{From: alice, Unavailable: true, LastSeen: t0.Add(-time.Hour)})},
		{"push_name", v(&events.PushName{JID: bobLID, JIDAlt: bob, OldPushName: "Bob", NewPushName: "Bobby"})},
		{"business_name", v(&events.BusinessName{JID: alice, NewBusinessName: "Alice's Bakery"})},
		{"contact_appstate", v(&events.Contact{JID: alice, Timestamp: t0, Action: &waSyncAction.ContactAction{FullName: proto.String("Alice Liddell"), FirstName: proto.String("Alice")}})},
		{"contact_appstate_lid", v(&events.Contact{JID: bob, Timestamp: t0, Action: &waSyncAction.ContactAction{FullName: proto.String("Bob Builder"), LidJID: proto.String(bobLID.String())}})},
		{"mute_until", v(&events.Mute{JID: group, Timestamp: t0, Action: &waSyncAction.MuteAction{Muted: proto.Bool(true), MuteEndTimestamp: proto.Int64(t0.Add(8 * time.Hour).UnixMilli())}})},
		{"mute_forever", v(&events.Mute{JID: alice, Timestamp: t0, Action: &waSyncAction.MuteAction{Muted: proto.Bool(true), MuteEndTimestamp: proto.Int64(-1)}})},
		{"unmute", v(&events.Mute{JID: alice, Timestamp: t0, Action: &waSyncAction.MuteAction{Muted: proto.Bool(false)}})},
		{"call_offer", v(&events.CallOffer{BasicCallMeta: types.BasicCallMeta{From: alice, Timestamp: t0, CallCreator: alice, CallID: "CALL1"},
			Data: &waBinary.Node{Tag: "offer", Content: []waBinary.Node{{Tag: "audio"}, {Tag: "video"}}}})},
		{"call_offer_notice_group", v(&events.CallOfferNotice{BasicCallMeta: types.BasicCallMeta{From: bob, Timestamp: t0, CallCreator: bob, CallID: "CALL2", GroupJID: group}, Media: "audio", Type: "group"})},
		{"call_missed", v(&events.CallTerminate{BasicCallMeta: types.BasicCallMeta{From: alice, Timestamp: t0, CallCreator: alice, CallID: "CALL1"}, Reason: "timeout"})},
		{"call_ended", v(&events.CallTerminate{BasicCallMeta: types.BasicCallMeta{From: alice, Timestamp: t0, CallCreator: own, CallID: "CALL3"}, Reason: "hangup"})},
		{"call_accepted_ended", func(t testing.TB) any {
			// Answered on the phone, then hung up: ended, not missed. The
			// converter is fresh per case, so the accept is played here.
			return callSequence{
				&events.CallAccept{BasicCallMeta: types.BasicCallMeta{From: alice, Timestamp: t0, CallCreator: alice, CallID: "CALL5"}},
				&events.CallTerminate{BasicCallMeta: types.BasicCallMeta{From: alice, Timestamp: t0.Add(time.Minute), CallCreator: alice, CallID: "CALL5"}, Reason: "hangup"},
			}
		}},
		{"call_missed_lid", v(&events.CallTerminate{BasicCallMeta: types.BasicCallMeta{From: bobLID, Timestamp: t0, CallCreator: bobLID, CallCreatorAlt: bob, CallID: "CALL6"}})},
		{"reaction_lid_own", func(t testing.TB) any {
			// In a LID-addressed group, the target's participant is the
			// owner's LID.
			info := groupInfo("3EB0rlid", bobLID)
			info.AddressingMode = types.AddressingModeLID
			return &events.Message{Info: info, Message: &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
				Key:  &waCommon.MessageKey{RemoteJID: proto.String(group.String()), ID: proto.String("MINE"), Participant: proto.String(ownLID.String())},
				Text: proto.String("🎉"),
			}}}
		}},
		{"receipt_own_device", v(&events.Receipt{MessageSource: types.MessageSource{Chat: alice, Sender: types.NewADJID(own.User, 0, 3), IsFromMe: true}, MessageIDs: []string{"O1"}, Timestamp: t0, Type: types.ReceiptTypeDelivered})},
		{"call_rejected", v(&events.CallReject{BasicCallMeta: types.BasicCallMeta{From: own, Timestamp: t0, CallCreator: alice, CallID: "CALL4"}})},
		{"group_info", v(&events.GroupInfo{JID: group, Sender: &sender, Timestamp: t0,
			Name:  &types.GroupName{Name: "Family 🏡"},
			Topic: &types.GroupTopic{Topic: "Sunday lunch at 1"},
			Join:  []types.JID{alice}, Leave: []types.JID{bobLID},
			Promote: []types.JID{alice}, Demote: []types.JID{bob}})},
		{"group_info_lid_actor", v(&events.GroupInfo{JID: group, Sender: &bobLID, SenderPN: &senderPN, Timestamp: t0, Leave: []types.JID{bobLID}})},
		{"joined_group", v(&events.JoinedGroup{Reason: "invite", Sender: &sender, GroupInfo: types.GroupInfo{JID: group, GroupName: types.GroupName{Name: "Family"}, GroupCreated: t0,
			Participants: []types.GroupParticipant{{JID: bobLID, LID: bobLID, PhoneNumber: bob}, {JID: own, PhoneNumber: own, LID: ownLID}}}})},
		{"created_group", v(&events.JoinedGroup{Type: "new", Sender: &sender, GroupInfo: types.GroupInfo{JID: group, GroupName: types.GroupName{Name: "New one"}, GroupCreated: t0}})},
		{"connected_ignored", v(&events.Connected{})},
		{"picture_changed", v(&events.Picture{JID: alice.ToNonAD(), Author: alice, Timestamp: t0, PictureID: "1700000001"})},
		{"picture_removed", v(&events.Picture{JID: group, Author: bob, Timestamp: t0, Remove: true, PictureID: "ignored"})},
		{"picture_no_jid", v(&events.Picture{PictureID: "1"})},
	}
}

// TestConvertGolden converts real whatsmeow values (protobufs kept as
// protojson in testdata/convert/*.pb.json, wrapped in the event structs
// whatsmeow dispatches) and compares the domain events, as JSON, with
// testdata/convert/*.golden.json. go test -run Golden -update rewrites them.
func TestConvertGolden(t *testing.T) {
	for _, tc := range convertCases() {
		t.Run(tc.name, func(t *testing.T) {
			c := testConverter()
			var evs []bridge.Event
			switch e := tc.evt(t).(type) {
			case callSequence:
				for _, x := range e {
					evs = append(evs, c.convert(context.Background(), x)...)
				}
			default:
				evs = c.convert(context.Background(), e)
			}
			got := dump(t, evs)
			path := filepath.Join("testdata", "convert", tc.name+".golden.json")
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

// callSequence is several events converted by one converter.
type callSequence []any

// dump prints events as a JSON list of {type, event}.
func dump(t testing.TB, evs []bridge.Event) []byte {
	type typed struct {
		Type  string
		Event bridge.Event
	}
	list := make([]typed, 0, len(evs))
	for _, e := range evs {
		list = append(list, typed{fmt.Sprintf("%T", e), e})
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGoldenFilesUsed fails on a testdata file no case reads, so a renamed
// case cannot leave a stale golden that nothing checks.
func TestGoldenFilesUsed(t *testing.T) {
	used := map[string]bool{}
	for _, tc := range convertCases() {
		if used[tc.name+".golden.json"] {
			t.Errorf("two cases named %s", tc.name)
		}
		used[tc.name+".golden.json"] = true
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "convert", "*.golden.json"))
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("%s: no test case", f)
		}
	}
}
