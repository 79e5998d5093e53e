package xmpp

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/codec")

// ---------------------------------------------------------------------------
// Test-local views of the wire format, as an independent client would
// unmarshal it. Every element is matched by namespace and name; anything
// unexpected lands in Other and fails the test.

type tEmpty struct{}

type tID struct {
	ID string `xml:"id,attr"`
}

type tAny struct {
	XMLName xml.Name
}

type tReply struct {
	To string `xml:"to,attr"`
	ID string `xml:"id,attr"`
}

type tRange struct {
	Start string `xml:"start,attr"`
	End   string `xml:"end,attr"`
}

type tFallback struct {
	For    string   `xml:"for,attr"`
	Bodies []tRange `xml:"urn:xmpp:fallback:0 body"`
}

type tReactions struct {
	ID        string   `xml:"id,attr"`
	Reactions []string `xml:"urn:xmpp:reactions:0 reaction"`
}

type tOOB struct {
	URL  *string `xml:"jabber:x:oob url"`
	Desc *string `xml:"jabber:x:oob desc"`
}

type tDelay struct {
	Stamp  string `xml:"stamp,attr"`
	From   string `xml:"from,attr"`
	Reason string `xml:",chardata"`
}

type tMessage struct {
	XMLName   xml.Name    `xml:"jabber:client message"`
	Type      string      `xml:"type,attr"`
	To        string      `xml:"to,attr"`
	ID        string      `xml:"id,attr"`
	Body      *string     `xml:"jabber:client body"`
	OriginID  *tID        `xml:"urn:xmpp:sid:0 origin-id"`
	Reply     *tReply     `xml:"urn:xmpp:reply:0 reply"`
	Fallbacks []tFallback `xml:"urn:xmpp:fallback:0 fallback"`
	Replace   *tID        `xml:"urn:xmpp:message-correct:0 replace"`
	Retract   *tID        `xml:"urn:xmpp:message-retract:1 retract"`
	Reactions *tReactions `xml:"urn:xmpp:reactions:0 reactions"`
	Store     *tEmpty     `xml:"urn:xmpp:hints store"`
	NoStore   *tEmpty     `xml:"urn:xmpp:hints no-store"`
	Received  *tID        `xml:"urn:xmpp:receipts received"`
	Request   *tEmpty     `xml:"urn:xmpp:receipts request"`
	Markable  *tEmpty     `xml:"urn:xmpp:chat-markers:0 markable"`
	Displayed *tID        `xml:"urn:xmpp:chat-markers:0 displayed"`
	Active    *tEmpty     `xml:"http://jabber.org/protocol/chatstates active"`
	Composing *tEmpty     `xml:"http://jabber.org/protocol/chatstates composing"`
	Paused    *tEmpty     `xml:"http://jabber.org/protocol/chatstates paused"`
	OOB       *tOOB       `xml:"jabber:x:oob x"`
	Delay     *tDelay     `xml:"urn:xmpp:delay delay"`
	Other     []tAny      `xml:",any"`
}

type tCaps struct {
	Hash string `xml:"hash,attr"`
	Node string `xml:"node,attr"`
	Ver  string `xml:"ver,attr"`
}

type tPresence struct {
	XMLName  xml.Name `xml:"jabber:client presence"`
	Type     string   `xml:"type,attr"`
	To       string   `xml:"to,attr"`
	ID       string   `xml:"id,attr"`
	Show     *string  `xml:"jabber:client show"`
	Status   *string  `xml:"jabber:client status"`
	Priority *string  `xml:"jabber:client priority"`
	C        *tCaps   `xml:"http://jabber.org/protocol/caps c"`
	Other    []tAny   `xml:",any"`
}

type tIdentity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr"`
}

type tField struct {
	Var    string   `xml:"var,attr"`
	Type   string   `xml:"type,attr"`
	Values []string `xml:"jabber:x:data value"`
}

type tForm struct {
	Type   string   `xml:"type,attr"`
	Fields []tField `xml:"jabber:x:data field"`
}

type tDisco struct {
	Node       string      `xml:"node,attr"`
	Identities []tIdentity `xml:"http://jabber.org/protocol/disco#info identity"`
	Vars       []struct {
		Var string `xml:"var,attr"`
	} `xml:"http://jabber.org/protocol/disco#info feature"`
	Forms []tForm `xml:"jabber:x:data x"`
	Other []tAny  `xml:",any"`
}

type tRosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr"`
	Subscription string   `xml:"subscription,attr"`
	Groups       []string `xml:"jabber:iq:roster group"`
}

type tRoster struct {
	Items []tRosterItem `xml:"jabber:iq:roster item"`
	Other []tAny        `xml:",any"`
}

type tUpload struct {
	Filename    string `xml:"filename,attr"`
	Size        string `xml:"size,attr"`
	ContentType string `xml:"content-type,attr"`
}

type tError struct {
	Type               string  `xml:"type,attr"`
	ServiceUnavailable *tEmpty `xml:"urn:ietf:params:xml:ns:xmpp-stanzas service-unavailable"`
	NotImplemented     *tEmpty `xml:"urn:ietf:params:xml:ns:xmpp-stanzas feature-not-implemented"`
	Text               *string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
	Other              []tAny  `xml:",any"`
}

type tIQ struct {
	XMLName xml.Name `xml:"jabber:client iq"`
	Type    string   `xml:"type,attr"`
	To      string   `xml:"to,attr"`
	ID      string   `xml:"id,attr"`
	Disco   *tDisco  `xml:"http://jabber.org/protocol/disco#info query"`
	Roster  *tRoster `xml:"jabber:iq:roster query"`
	Ping    *tEmpty  `xml:"urn:xmpp:ping ping"`
	Upload  *tUpload `xml:"urn:xmpp:http:upload:0 request"`
	Error   *tError  `xml:"jabber:client error"`
	Other   []tAny   `xml:",any"`
}

// strict unmarshals b as a client does: inside a jabber:client stream.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.DefaultSpace = NSClient
	d.Strict = true
	if err := d.Decode(v); err != nil {
		t.Fatalf("strict parse of %s: %v", b, err)
	}
}

func ptr[T any](v T) *T { return &v }

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ---------------------------------------------------------------------------
// Outbound golden cases

type encodeCase struct {
	name   string
	encode func() ([]byte, error)
	check  func(t *testing.T, b []byte)
}

func messageCheck(want tMessage) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		t.Helper()
		var got tMessage
		strict(t, b, &got)
		want.XMLName = got.XMLName
		if !reflect.DeepEqual(got, want) {
			t.Errorf("wire form:\n got %s\nwant %s", show(got), show(want))
		}
	}
}

var stamp = time.Date(2024, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))

func encodeCases() []encodeCase {
	msg := func(m Message) func() ([]byte, error) { return func() ([]byte, error) { return EncodeMessage(m) } }
	pres := func(p Presence) func() ([]byte, error) { return func() ([]byte, error) { return EncodePresence(p) } }
	iq := func(q IQ) func() ([]byte, error) { return func() ([]byte, error) { return EncodeIQ(q) } }
	req := &InIQ{ID: "q1", From: "owner@example.org/phone", Type: "get"}
	quoted := "Alice: see you 🙂\nat 5"
	quotePrefix := "> Alice: see you 🙂\n> at 5\n"
	return []encodeCase{
		{"message_plain", msg(Message{ID: "m1", To: "owner@example.org", Body: "*Alice*: hello", Markable: true}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m1", Body: ptr("*Alice*: hello"),
				OriginID: &tID{"m1"}, Markable: &tEmpty{}})},
		{"message_reply", msg(Message{ID: "m2", To: "owner@example.org", Body: "*Bob*: ok", Markable: true,
			Reply: &Reply{To: "bot@example.org", ID: "m1"}, Quote: quoted}),
			func(t *testing.T, b []byte) {
				messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m2", Body: ptr(quotePrefix + "*Bob*: ok"),
					OriginID: &tID{"m2"}, Reply: &tReply{To: "bot@example.org", ID: "m1"},
					Fallbacks: []tFallback{{For: NSReply, Bodies: []tRange{{"0", "26"}}}},
					Markable:  &tEmpty{}})(t, b)
				// The range counts code points (XEP-0426): the emoji is one.
				if n := utf8.RuneCountInString(quotePrefix); n != 26 {
					t.Fatalf("quote prefix has %d code points, the test assumes 26", n)
				}
			}},
		{"message_replace", msg(Message{ID: "m3", To: "owner@example.org", Body: "*Alice*: hello again", Replace: "m1"}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m3", Body: ptr("*Alice*: hello again"),
				OriginID: &tID{"m3"}, Replace: &tID{"m1"}})},
		{"message_retract", msg(Message{ID: "m4", To: "owner@example.org", Retract: "m1", Markable: true}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m4", Body: ptr(retractDefault),
				OriginID: &tID{"m4"}, Retract: &tID{"m1"}, Fallbacks: []tFallback{{For: NSRetract}}, Store: &tEmpty{}})},
		{"message_retract_body", msg(Message{ID: "m5", To: "owner@example.org", Retract: "m1", Body: "*Alice* deleted a message"}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m5", Body: ptr("*Alice* deleted a message"),
				OriginID: &tID{"m5"}, Retract: &tID{"m1"}, Fallbacks: []tFallback{{For: NSRetract}}, Store: &tEmpty{}})},
		{"message_reactions", msg(Message{ID: "m6", To: "owner@example.org", Reactions: &Reactions{ID: "m1", Emojis: []string{"👍", "❤️"}}}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m6", OriginID: &tID{"m6"},
				Reactions: &tReactions{ID: "m1", Reactions: []string{"👍", "❤️"}}, Store: &tEmpty{}})},
		{"message_reactions_none", msg(Message{ID: "m7", To: "owner@example.org", Reactions: &Reactions{ID: "m1"}}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m7", OriginID: &tID{"m7"},
				Reactions: &tReactions{ID: "m1"}, Store: &tEmpty{}})},
		{"message_receipt", msg(Message{ID: "m8", To: "owner@example.org", Receipt: "o1"}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m8", OriginID: &tID{"m8"}, Received: &tID{"o1"}})},
		{"message_displayed", msg(Message{ID: "m9", To: "owner@example.org", Displayed: "o1"}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m9", OriginID: &tID{"m9"}, Displayed: &tID{"o1"}, Store: &tEmpty{}})},
		{"message_composing", msg(Message{ID: "m10", To: "owner@example.org", ChatState: StateComposing}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m10", OriginID: &tID{"m10"},
				Composing: &tEmpty{}, NoStore: &tEmpty{}})},
		{"message_active_body", msg(Message{ID: "m11", To: "owner@example.org", Body: "hi", ChatState: StateActive}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m11", Body: ptr("hi"), OriginID: &tID{"m11"},
				Active: &tEmpty{}})},
		{"message_oob", msg(Message{ID: "m12", To: "owner@example.org", Body: "https://up.example.org/a/b.jpg",
			OOB: &OOB{URL: "https://up.example.org/a/b.jpg", Desc: "Alice: photo"}, Markable: true}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m12", Body: ptr("https://up.example.org/a/b.jpg"),
				OriginID: &tID{"m12"}, Markable: &tEmpty{},
				OOB: &tOOB{URL: ptr("https://up.example.org/a/b.jpg"), Desc: ptr("Alice: photo")}})},
		{"message_delay", msg(Message{ID: "m13", To: "owner@example.org", Body: "late", Delay: &Delay{Stamp: stamp, From: "bot@example.org", Reason: "bridge offline"}}),
			messageCheck(tMessage{Type: "chat", To: "owner@example.org", ID: "m13", Body: ptr("late"), OriginID: &tID{"m13"},
				Delay: &tDelay{Stamp: "2024-03-01T08:30:00Z", From: "bot@example.org", Reason: "bridge offline"}})},
		{"message_escaping", msg(Message{ID: `m"14'<`, To: "owner@example.org", Type: "normal",
			Body: "a <b> & \"c\" ]]> \x00\x01\x1b\uFFFE tab\tcr\rlf\n bad\xff end"}),
			messageCheck(tMessage{Type: "normal", To: "owner@example.org", ID: `m"14'<`,
				Body:     ptr("a <b> & \"c\" ]]>  tab\tcr\rlf\n bad\uFFFD end"),
				OriginID: &tID{`m"14'<`}})},
		{"presence_caps", pres(Presence{Show: "away", Status: "WhatsApp reconnecting <3", Priority: -1, Caps: BotDiscoInfo().Caps()}),
			func(t *testing.T, b []byte) {
				var got tPresence
				strict(t, b, &got)
				want := tPresence{XMLName: got.XMLName, Show: ptr("away"), Status: ptr("WhatsApp reconnecting <3"), Priority: ptr("-1"),
					C: &tCaps{Hash: "sha-1", Node: CapsNode, Ver: BotDiscoInfo().Ver()}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %s\nwant %s", show(got), show(want))
				}
			}},
		{"presence_subscribe", pres(Subscribe("owner@example.org")), presenceType("subscribe")},
		{"presence_subscribed", pres(Subscribed("owner@example.org")), presenceType("subscribed")},
		{"presence_unsubscribed", pres(Unsubscribed("owner@example.org")), presenceType("unsubscribed")},
		{"iq_disco_info", iq(DiscoInfoResult(req, CapsNode+"#"+BotDiscoInfo().Ver(), BotDiscoInfo())),
			func(t *testing.T, b []byte) {
				var got tIQ
				strict(t, b, &got)
				if got.Type != "result" || got.ID != "q1" || got.To != "owner@example.org/phone" || got.Disco == nil || len(got.Other) > 0 {
					t.Fatalf("got %s", show(got))
				}
				if got.Disco.Node != CapsNode+"#"+BotDiscoInfo().Ver() {
					t.Errorf("node %q", got.Disco.Node)
				}
				if !reflect.DeepEqual(got.Disco.Identities, []tIdentity{{"client", "bot", "waxmpp"}}) {
					t.Errorf("identities %s", show(got.Disco.Identities))
				}
				var features []string
				for _, f := range got.Disco.Vars {
					features = append(features, f.Var)
				}
				for _, f := range []string{NSDiscoInfo, NSCaps, NSPing, NSReceipts, NSMarkers, NSChatStates, NSCorrect, NSRetract, NSRetract0,
					NSReactions, NSReply, NSFallback, NSOOB, NSDelay, NSSID, NSCommands, NSStyling} {
					if !strings.Contains("\n"+strings.Join(features, "\n")+"\n", "\n"+f+"\n") {
						t.Errorf("feature %s missing", f)
					}
				}
				// What the client computes from the result must match the caps we advertise.
				ids := []Identity{{Category: "client", Type: "bot", Name: "waxmpp"}}
				if v := CapsVer(ids, features); v != BotDiscoInfo().Ver() {
					t.Errorf("recomputed ver %s, advertised %s", v, BotDiscoInfo().Ver())
				}
			}},
		{"iq_disco_info_form", iq(DiscoInfoResult(req, "", DiscoInfo{
			Identities: []Identity{{Category: "client", Type: "bot", Name: "waxmpp"}},
			Features:   []string{NSDiscoInfo},
			Forms:      []Form{{Type: "urn:xmpp:dataforms:softwareinfo", Fields: []Field{{Var: "software", Values: []string{"waxmpp"}}}}},
		})),
			func(t *testing.T, b []byte) {
				var got tIQ
				strict(t, b, &got)
				want := []tForm{{Type: "result", Fields: []tField{
					{Var: "FORM_TYPE", Type: "hidden", Values: []string{"urn:xmpp:dataforms:softwareinfo"}},
					{Var: "software", Values: []string{"waxmpp"}},
				}}}
				if got.Disco == nil || got.Disco.Node != "" || !reflect.DeepEqual(got.Disco.Forms, want) {
					t.Errorf("got %s", show(got))
				}
			}},
		{"iq_ping", iq(Ping("p1", "")), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "get" || got.ID != "p1" || got.To != "" || got.Ping == nil || len(got.Other) > 0 {
				t.Errorf("got %s", show(got))
			}
		}},
		{"iq_result", iq(Result(&InIQ{ID: "s1", From: "example.org", Type: "get"})), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "result" || got.ID != "s1" || got.To != "example.org" || len(got.Other) > 0 {
				t.Errorf("got %s", show(got))
			}
		}},
		{"iq_roster_get", iq(RosterGet("r1")), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "get" || got.ID != "r1" || got.Roster == nil || len(got.Roster.Items) > 0 || len(got.Other) > 0 {
				t.Errorf("got %s", show(got))
			}
		}},
		{"iq_roster_set", iq(RosterSet("r2", RosterItem{JID: "owner@example.org", Name: "Owner", Subscription: "", Groups: []string{"WhatsApp"}})),
			func(t *testing.T, b []byte) {
				var got tIQ
				strict(t, b, &got)
				want := []tRosterItem{{JID: "owner@example.org", Name: "Owner", Groups: []string{"WhatsApp"}}}
				if got.Type != "set" || got.Roster == nil || !reflect.DeepEqual(got.Roster.Items, want) || len(got.Other) > 0 {
					t.Errorf("got %s", show(got))
				}
			}},
		{"iq_upload_request", iq(UploadRequest("u1", "upload.example.org", "photo 1.jpg", 123456, "image/jpeg")),
			func(t *testing.T, b []byte) {
				var got tIQ
				strict(t, b, &got)
				want := &tUpload{Filename: "photo 1.jpg", Size: "123456", ContentType: "image/jpeg"}
				if got.Type != "get" || got.To != "upload.example.org" || !reflect.DeepEqual(got.Upload, want) || len(got.Other) > 0 {
					t.Errorf("got %s", show(got))
				}
			}},
		{"iq_error_service_unavailable", iq(ErrorReply(req, CondServiceUnavailable)), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "error" || got.ID != "q1" || got.Error == nil || got.Error.Type != "cancel" ||
				got.Error.ServiceUnavailable == nil || len(got.Error.Other) > 0 || len(got.Other) > 0 {
				t.Errorf("got %s", show(got))
			}
		}},
		{"iq_error_feature_not_implemented", iq(ErrorReply(req, CondFeatureNotImplemented)), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "error" || got.Error == nil || got.Error.Type != "cancel" || got.Error.NotImplemented == nil || len(got.Other) > 0 {
				t.Errorf("got %s", show(got))
			}
		}},
		{"iq_marshalled_payload", iq(IQ{ID: "v1", To: "example.org", Type: "get", Payload: struct {
			XMLName xml.Name `xml:"jabber:iq:version query"`
		}{}}), func(t *testing.T, b []byte) {
			var got tIQ
			strict(t, b, &got)
			if got.Type != "get" || len(got.Other) != 1 || got.Other[0].XMLName != (xml.Name{Space: "jabber:iq:version", Local: "query"}) {
				t.Errorf("got %s", show(got))
			}
		}},
	}
}

func presenceType(typ string) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		t.Helper()
		var got tPresence
		strict(t, b, &got)
		want := tPresence{XMLName: got.XMLName, Type: typ, To: "owner@example.org"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s\nwant %s", show(got), show(want))
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	dir := filepath.Join("testdata", "codec")
	for _, c := range encodeCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.encode()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, c.name+".xml")
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, append(bytes.Clone(got), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
				t.Errorf("%s differs:\n got %s\nwant %s", file, got, want)
			}
			c.check(t, got)
			// Our own decoder must accept everything we send.
			if _, err := DecodeBytes(got); err != nil {
				t.Errorf("DecodeBytes(own output): %v", err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for name, m := range map[string]Message{
		"no id":             {To: "o@example.org", Body: "x"},
		"no to":             {ID: "1", Body: "x"},
		"id only controls":  {ID: "\x01", To: "o@example.org"},
		"bad chat state":    {ID: "1", To: "o@example.org", ChatState: "typing"},
		"reply without id":  {ID: "1", To: "o@example.org", Reply: &Reply{To: "b@example.org"}},
		"reactions without": {ID: "1", To: "o@example.org", Reactions: &Reactions{Emojis: []string{"👍"}}},
	} {
		if b, err := EncodeMessage(m); err == nil {
			t.Errorf("%s: EncodeMessage = %s, want an error", name, b)
		}
	}
	if _, err := EncodePresence(Presence{Show: "busy"}); err == nil {
		t.Error("EncodePresence with show busy: no error")
	}
	if _, err := EncodeIQ(IQ{ID: "1", Type: "fetch"}); err == nil {
		t.Error("EncodeIQ with type fetch: no error")
	}
	if _, err := EncodeIQ(IQ{Type: "get"}); err == nil {
		t.Error("EncodeIQ without id: no error")
	}
	if _, err := EncodeIQ(IQ{ID: "1", Type: "get", Payload: make(chan int)}); err == nil {
		t.Error("EncodeIQ with unmarshallable payload: no error")
	}
}

func TestEncodeClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"a\x00b\x08c\x0b\x0c\x1fd": "abcd",
		"tab\tnl\ncr\r":            "tab\tnl\ncr\r",
		"bad\xc3(":                 "bad\uFFFD(",
		"\uFFFE\uFFFF\uFFFD":       "\uFFFD",
		"emoji 🙂 \U0010FFFF":       "emoji 🙂 \U0010FFFF",
		"\xed\xa0\x80":             "\uFFFD\uFFFD\uFFFD", // an encoded surrogate is invalid UTF-8
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Inbound

// decodeCases are stanzas as Conversations, Dino, Gajim, Cheogram and
// Prosody send them to the bot (bot@example.org/waxmpp; the owner is
// owner@example.org). They also seed FuzzDecode.
var decodeCases = []struct {
	name string
	in   string
	want Stanza
}{
	{"conversations_plain", `<message xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" type="chat" id="c2d8a1b6-5f0e-4e55-9a0e-8bd3a0f2b1c4">
<body>hello *world*</body>
<request xmlns="urn:xmpp:receipts"/>
<markable xmlns="urn:xmpp:chat-markers:0"/>
<origin-id xmlns="urn:xmpp:sid:0" id="c2d8a1b6-5f0e-4e55-9a0e-8bd3a0f2b1c4"/>
<active xmlns="http://jabber.org/protocol/chatstates"/>
<stanza-id xmlns="urn:xmpp:sid:0" id="Q1mUtB0aUFTtJk0e" by="bot@example.org"/>
</message>`, &Inbound{ID: "c2d8a1b6-5f0e-4e55-9a0e-8bd3a0f2b1c4", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org",
		Type: "chat", Body: "hello *world*", HasBody: true, OriginID: "c2d8a1b6-5f0e-4e55-9a0e-8bd3a0f2b1c4",
		StanzaIDs: []StanzaID{{ID: "Q1mUtB0aUFTtJk0e", By: "bot@example.org"}}, Markable: true, ChatState: "active"}},

	{"conversations_reply_fallback", `<message xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" type="chat" id="r1">
<body>&gt; *Alice*: are you 🙂 there?
yes</body>
<reply xmlns="urn:xmpp:reply:0" to="bot@example.org/waxmpp" id="wa-3EB0C431"/>
<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="28"/></fallback>
<origin-id xmlns="urn:xmpp:sid:0" id="r1"/>
<markable xmlns="urn:xmpp:chat-markers:0"/>
</message>`, &Inbound{ID: "r1", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Type: "chat",
		Body: "> *Alice*: are you 🙂 there?\nyes", HasBody: true, OriginID: "r1", Markable: true,
		Reply:     &Reply{To: "bot@example.org/waxmpp", ID: "wa-3EB0C431"},
		Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{{0, 28}}}}}},

	{"dino_reply", `<message to='bot@example.org' type='chat' id='8d2b' from='owner@example.org/dino.5b1'><body>&gt; quoted
answer</body><reply xmlns='urn:xmpp:reply:0' id='m1' to='bot@example.org'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body end='9' start='0'/></fallback><origin-id xmlns='urn:xmpp:sid:0' id='8d2b'/><markable xmlns='urn:xmpp:chat-markers:0'/><request xmlns='urn:xmpp:receipts'/></message>`,
		&Inbound{ID: "8d2b", From: "owner@example.org/dino.5b1", To: "bot@example.org", Type: "chat", Body: "> quoted\nanswer", HasBody: true,
			OriginID: "8d2b", Reply: &Reply{To: "bot@example.org", ID: "m1"}, Fallbacks: []Fallback{{For: NSReply, Ranges: []Range{{0, 9}}}},
			Markable: true}},

	{"gajim_correction", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="e7c1" from="owner@example.org/gajim.AB12"><body>corrected text</body><replace xmlns="urn:xmpp:message-correct:0" id="d00d"/><origin-id xmlns="urn:xmpp:sid:0" id="e7c1"/><request xmlns="urn:xmpp:receipts"/></message>`,
		&Inbound{ID: "e7c1", From: "owner@example.org/gajim.AB12", To: "bot@example.org", Type: "chat", Body: "corrected text", HasBody: true,
			OriginID: "e7c1", Replace: "d00d"}},

	{"retract_v1", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="retract-1" from="owner@example.org/gajim.AB12">
<retract xmlns="urn:xmpp:message-retract:1" id="origin-id-1"/>
<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:message-retract:1"/>
<body>/me retracted a previous message, but it's unsupported by your client.</body>
<store xmlns="urn:xmpp:hints"/>
</message>`, &Inbound{ID: "retract-1", From: "owner@example.org/gajim.AB12", To: "bot@example.org", Type: "chat",
		Body: "/me retracted a previous message, but it's unsupported by your client.", HasBody: true,
		Fallbacks: []Fallback{{For: NSRetract}}, Retract: &Retraction{ID: "origin-id-1", Form: RetractV1}}},

	{"retract_v0_fasten", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="retract-0" from="owner@example.org/Conversations.x7Yq">
<apply-to xmlns="urn:xmpp:fasten:0" id="origin-id-1"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to>
<fallback xmlns="urn:xmpp:fallback:0"/>
<body>This person attempted to retract a previous message, but it's unsupported by your client.</body>
</message>`, &Inbound{ID: "retract-0", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Type: "chat",
		Body: retractDefault, HasBody: true, Fallbacks: []Fallback{{}}, Retract: &Retraction{ID: "origin-id-1", Form: RetractFasten}}},

	{"cheogram_retract_correction", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="ch-9" from="owner@example.org/Cheogram.Zx"><body> </body><replace xmlns="urn:xmpp:message-correct:0" id="origin-id-1"/><origin-id xmlns="urn:xmpp:sid:0" id="ch-9"/></message>`,
		&Inbound{ID: "ch-9", From: "owner@example.org/Cheogram.Zx", To: "bot@example.org", Type: "chat", Body: " ", HasBody: true,
			OriginID: "ch-9", Retract: &Retraction{ID: "origin-id-1", Form: RetractCorrection}}},

	{"cheogram_retract_both_forms", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="ch-10" from="owner@example.org/Cheogram.Zx"><body> </body><replace xmlns="urn:xmpp:message-correct:0" id="origin-id-1"/><apply-to xmlns="urn:xmpp:fasten:0" id="origin-id-1"><retract xmlns="urn:xmpp:message-retract:0"/></apply-to></message>`,
		&Inbound{ID: "ch-10", From: "owner@example.org/Cheogram.Zx", To: "bot@example.org", Type: "chat", Body: " ", HasBody: true,
			Replace: "origin-id-1", Retract: &Retraction{ID: "origin-id-1", Form: RetractFasten}}},

	{"gajim_reactions", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="re-1" from="owner@example.org/gajim.AB12"><reactions xmlns="urn:xmpp:reactions:0" id="wa-3EB0"><reaction>👍</reaction><reaction>❤️</reaction></reactions><store xmlns="urn:xmpp:hints"/></message>`,
		&Inbound{ID: "re-1", From: "owner@example.org/gajim.AB12", To: "bot@example.org", Type: "chat",
			Reactions: &Reactions{ID: "wa-3EB0", Emojis: []string{"👍", "❤️"}}}},

	{"reactions_removed", `<message xmlns="jabber:client" to="bot@example.org" type="chat" id="re-2" from="owner@example.org/dino"><reactions xmlns="urn:xmpp:reactions:0" id="wa-3EB0"/><store xmlns="urn:xmpp:hints"/></message>`,
		&Inbound{ID: "re-2", From: "owner@example.org/dino", To: "bot@example.org", Type: "chat", Reactions: &Reactions{ID: "wa-3EB0", Emojis: []string{}}}},

	{"marker_displayed", `<message xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" type="chat" id="mk-1"><displayed xmlns="urn:xmpp:chat-markers:0" id="wa-3EB0"/><store xmlns="urn:xmpp:hints"/></message>`,
		&Inbound{ID: "mk-1", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Type: "chat", Marker: &Marker{Kind: "displayed", ID: "wa-3EB0"}}},

	{"marker_received_and_receipt", `<message xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" id="mk-2"><received xmlns="urn:xmpp:chat-markers:0" id="wa-1"/><received xmlns="urn:xmpp:receipts" id="wa-1"/></message>`,
		&Inbound{ID: "mk-2", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Marker: &Marker{Kind: "received", ID: "wa-1"}, Received: "wa-1"}},

	{"chat_state_composing", `<message xmlns="jabber:client" from="owner@example.org/gajim.AB12" to="bot@example.org" type="chat" id="cs-1"><composing xmlns="http://jabber.org/protocol/chatstates"/><no-store xmlns="urn:xmpp:hints"/></message>`,
		&Inbound{ID: "cs-1", From: "owner@example.org/gajim.AB12", To: "bot@example.org", Type: "chat", ChatState: "composing"}},

	{"conversations_oob", `<message xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" type="chat" id="f-1"><body>https://upload.example.org/Zq/photo.jpg</body><x xmlns="jabber:x:oob"><url>https://upload.example.org/Zq/photo.jpg</url></x><origin-id xmlns="urn:xmpp:sid:0" id="f-1"/></message>`,
		&Inbound{ID: "f-1", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Type: "chat", Body: "https://upload.example.org/Zq/photo.jpg", HasBody: true,
			OriginID: "f-1", OOB: &OOB{URL: "https://upload.example.org/Zq/photo.jpg"}}},

	{"offline_delay", `<message xmlns="jabber:client" from="owner@example.org/dino" to="bot@example.org" type="chat" id="d-1"><body>while you were away</body><delay xmlns="urn:xmpp:delay" from="example.org" stamp="2024-03-01T08:30:00.123Z">Offline Storage</delay></message>`,
		&Inbound{ID: "d-1", From: "owner@example.org/dino", To: "bot@example.org", Type: "chat", Body: "while you were away", HasBody: true,
			Delay: &Delay{Stamp: time.Date(2024, 3, 1, 8, 30, 0, 123e6, time.UTC), From: "example.org", Reason: "Offline Storage"}}},

	{"carbon_sent", `<message xmlns="jabber:client" from="bot@example.org" to="bot@example.org/waxmpp" type="chat">
<sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">
<message xmlns="jabber:client" from="bot@example.org/other" to="owner@example.org" type="chat" id="cb-1"><body>from another resource</body><origin-id xmlns="urn:xmpp:sid:0" id="cb-1"/></message>
</forwarded></sent></message>`,
		&Inbound{ID: "cb-1", From: "bot@example.org/other", To: "owner@example.org", Type: "chat", Body: "from another resource", HasBody: true,
			OriginID: "cb-1", Carbon: CarbonSent, CarbonFrom: "bot@example.org"}},

	{"carbon_received_forged", `<message xmlns="jabber:client" from="mallory@evil.example" to="bot@example.org/waxmpp" type="chat">
<received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2024-03-01T08:30:00Z"/>
<message xmlns="jabber:client" from="owner@example.org/phone" to="bot@example.org/other" type="chat" id="cb-2"><body>/logout</body></message>
</forwarded></received></message>`,
		&Inbound{ID: "cb-2", From: "owner@example.org/phone", To: "bot@example.org/other", Type: "chat", Body: "/logout", HasBody: true,
			Carbon: CarbonReceived, CarbonFrom: "mallory@evil.example"}},

	{"error_message", `<message xmlns="jabber:client" from="owner@example.org" to="bot@example.org/waxmpp" type="error" id="m1"><error type="cancel" by="example.org"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">User session not found</text></error></message>`,
		&Inbound{ID: "m1", From: "owner@example.org", To: "bot@example.org/waxmpp", Type: "error",
			Error: &StanzaError{Type: "cancel", Condition: "service-unavailable", Text: "User session not found"}}},

	{"unknown_elements_and_langs", `<message xmlns="jabber:client" from="owner@example.org/x" to="bot@example.org" type="chat" id="u-1"><body xml:lang="de">hallo</body><body>hello</body><encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl"/><x xmlns="jabber:x:conference" jid="room@muc.example.org"/><thread>t1</thread><future xmlns="urn:example:future"><deep><deeper/></deep></future></message>`,
		// The EME hint marks it encrypted: its body is a fallback.
		&Inbound{ID: "u-1", From: "owner@example.org/x", To: "bot@example.org", Type: "chat", Body: "hello", HasBody: true, Encryption: "OMEMO", Sealed: true}},

	{"no_stream_namespace", `<message from="owner@example.org/x" to="bot@example.org" type="chat" id="n-1"><body>a &amp; b &#x1F642;</body></message>`,
		&Inbound{ID: "n-1", From: "owner@example.org/x", To: "bot@example.org", Type: "chat", Body: "a & b 🙂", HasBody: true}},

	{"bad_fallback_range_ignored", `<message from="owner@example.org/x" to="bot@example.org" type="chat" id="n-2"><body>keep all</body><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="zero" end="4"/></fallback></message>`,
		&Inbound{ID: "n-2", From: "owner@example.org/x", To: "bot@example.org", Type: "chat", Body: "keep all", HasBody: true}},

	{"presence_conversations", `<presence xmlns="jabber:client" from="owner@example.org/Conversations.x7Yq" to="bot@example.org" id="p-1"><show>away</show><status>on the bus</status><priority>24</priority><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="http://conversations.im" ver="Dq3iS2o6CwA2VV9fJbIvZ/GQbC0="/><idle xmlns="urn:xmpp:idle:1" since="2024-03-01T08:00:00Z"/></presence>`,
		&InPresence{ID: "p-1", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org", Show: "away", Status: "on the bus", Priority: 24,
			Caps: &Caps{Hash: "sha-1", Node: "http://conversations.im", Ver: "Dq3iS2o6CwA2VV9fJbIvZ/GQbC0="}}},

	{"presence_subscribe", `<presence xmlns="jabber:client" from="owner@example.org" to="bot@example.org" type="subscribe"/>`,
		&InPresence{From: "owner@example.org", To: "bot@example.org", Type: "subscribe"}},

	{"presence_unavailable", `<presence xmlns="jabber:client" from="owner@example.org/dino" to="bot@example.org/waxmpp" type="unavailable"><priority>not a number</priority></presence>`,
		&InPresence{From: "owner@example.org/dino", To: "bot@example.org/waxmpp", Type: "unavailable"}},

	{"iq_ping", `<iq xmlns="jabber:client" type="get" id="s2c1" from="example.org" to="bot@example.org/waxmpp"><ping xmlns="urn:xmpp:ping"/></iq>`,
		&InIQ{ID: "s2c1", From: "example.org", To: "bot@example.org/waxmpp", Type: "get",
			Payload: xml.Name{Space: NSPing, Local: "ping"}, PayloadXML: []byte(`<ping xmlns="urn:xmpp:ping"/>`)}},

	{"iq_disco_info_node", `<iq xmlns="jabber:client" type="get" id="disco1" from="owner@example.org/Conversations.x7Yq" to="bot@example.org/waxmpp"><query xmlns="http://jabber.org/protocol/disco#info" node="https://waxmpp.invalid#abc="/></iq>`,
		&InIQ{ID: "disco1", From: "owner@example.org/Conversations.x7Yq", To: "bot@example.org/waxmpp", Type: "get",
			Payload:    xml.Name{Space: NSDiscoInfo, Local: "query"},
			PayloadXML: []byte(`<query xmlns="http://jabber.org/protocol/disco#info" node="https://waxmpp.invalid#abc="/>`)}},

	{"iq_roster_push", `<iq xmlns="jabber:client" type="set" id="push1" to="bot@example.org/waxmpp"><query xmlns="jabber:iq:roster" ver="v2"><item jid="owner@example.org" subscription="both" name="Me &amp; I"><group>Owner</group></item></query></iq>`,
		&InIQ{ID: "push1", To: "bot@example.org/waxmpp", Type: "set", Payload: xml.Name{Space: NSRoster, Local: "query"},
			PayloadXML: []byte(`<query xmlns="jabber:iq:roster" ver="v2"><item jid="owner@example.org" subscription="both" name="Me &amp; I"><group>Owner</group></item></query>`)}},

	{"iq_upload_slot", `<iq xmlns="jabber:client" type="result" id="u1" from="upload.example.org" to="bot@example.org/waxmpp"><slot xmlns="urn:xmpp:http:upload:0"><put url="https://upload.example.org/Zq/photo.jpg?v=1&amp;t=2"><header name="Authorization">Basic Zm9v</header></put><get url="https://upload.example.org/Zq/photo.jpg"/></slot></iq>`,
		&InIQ{ID: "u1", From: "upload.example.org", To: "bot@example.org/waxmpp", Type: "result", Payload: xml.Name{Space: NSUpload, Local: "slot"},
			PayloadXML: []byte(`<slot xmlns="urn:xmpp:http:upload:0"><put url="https://upload.example.org/Zq/photo.jpg?v=1&amp;t=2"><header name="Authorization">Basic Zm9v</header></put><get url="https://upload.example.org/Zq/photo.jpg"/></slot>`)}},

	{"iq_result_empty", `<iq type="result" id="ping-7" from="example.org" to="bot@example.org/waxmpp"/>`,
		&InIQ{ID: "ping-7", From: "example.org", To: "bot@example.org/waxmpp", Type: "result"}},

	{"iq_error", `<iq xmlns="jabber:client" type="error" id="u2" from="upload.example.org"><request xmlns="urn:xmpp:http:upload:0" filename="big.mp4" size="999999999"/><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">File too large</text><file-too-large xmlns="urn:xmpp:http:upload:0"><max-file-size>104857600</max-file-size></file-too-large></error></iq>`,
		&InIQ{ID: "u2", From: "upload.example.org", Type: "error", Payload: xml.Name{Space: NSUpload, Local: "request"},
			PayloadXML: []byte(`<request xmlns="urn:xmpp:http:upload:0" filename="big.mp4" size="999999999"/>`),
			Error:      &StanzaError{Type: "modify", Condition: "not-acceptable", Text: "File too large"}}},

	{"iq_payload_mixed_namespaces", `<iq xmlns="jabber:client" type="set" id="cmd1" from="owner@example.org/gajim"><command xmlns="http://jabber.org/protocol/commands" node="status" action="execute" xml:lang="en"><x xmlns="jabber:x:data" type="submit"><field var="a" xmlns:foo="urn:foo" foo:bar=""><value>1 &lt; 2</value></field></x><plain xmlns="">text</plain></command></iq>`,
		&InIQ{ID: "cmd1", From: "owner@example.org/gajim", Type: "set", Payload: xml.Name{Space: NSCommands, Local: "command"},
			PayloadXML: []byte(`<command xmlns="http://jabber.org/protocol/commands" node="status" action="execute" xml:lang="en"><x xmlns="jabber:x:data" type="submit"><field xmlns:ns1="urn:foo" var="a" ns1:bar=""><value>1 &lt; 2</value></field></x><plain xmlns="">text</plain></command>`)}},
}

func TestDecode(t *testing.T) {
	for _, c := range decodeCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeBytes([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %s\nwant %s", show(got), show(c.want))
			}
		})
	}
}

func TestDecodeBodyWithoutFallback(t *testing.T) {
	for _, c := range []struct {
		name, in, ns, want string
	}{
		{"conversations_reply_fallback", "", NSReply, "yes"},
		{"dino_reply", "", NSReply, "answer"},
		{"retract_v1", "", NSRetract, ""},
		{"retract_v1", "", NSReply, "/me retracted a previous message, but it's unsupported by your client."},
		{"conversations_plain", "", NSReply, "hello *world*"},
		{"bad_fallback_range_ignored", "", NSReply, "keep all"},
		{"range_past_end", `<message id="x"><body>short</body><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="99"/></fallback></message>`, NSReply, "short"},
		{"two_ranges", `<message id="x"><body>[q]mid[q2]end</body><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="3"/><body start="6" end="10"/></fallback></message>`, NSReply, "midend"},
		{"subject_only", `<message id="x"><body>all</body><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><subject start="0" end="3"/></fallback></message>`, NSReply, "all"},
	} {
		in := c.in
		if in == "" {
			for _, d := range decodeCases {
				if d.name == c.name {
					in = d.in
				}
			}
		}
		st, err := DecodeBytes([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := st.(*Inbound).BodyWithoutFallback(c.ns); got != c.want {
			t.Errorf("%s: BodyWithoutFallback(%s) = %q, want %q", c.name, c.ns, got, c.want)
		}
	}
}

func TestDecodeIQUnmarshal(t *testing.T) {
	var slotIn, pushIn string
	for _, d := range decodeCases {
		switch d.name {
		case "iq_upload_slot":
			slotIn = d.in
		case "iq_roster_push":
			pushIn = d.in
		}
	}
	st, err := DecodeBytes([]byte(slotIn))
	if err != nil {
		t.Fatal(err)
	}
	var slot UploadSlot
	if err := st.(*InIQ).Unmarshal(&slot); err != nil {
		t.Fatal(err)
	}
	if slot.Put.URL != "https://upload.example.org/Zq/photo.jpg?v=1&t=2" || slot.Get.URL != "https://upload.example.org/Zq/photo.jpg" ||
		len(slot.Put.Headers) != 1 || slot.Put.Headers[0].Name != "Authorization" || slot.Put.Headers[0].Value != "Basic Zm9v" {
		t.Errorf("slot %s", show(slot))
	}
	st, err = DecodeBytes([]byte(pushIn))
	if err != nil {
		t.Fatal(err)
	}
	var roster Roster
	if err := st.(*InIQ).Unmarshal(&roster); err != nil {
		t.Fatal(err)
	}
	if roster.Ver != "v2" || len(roster.Items) != 1 || roster.Items[0].Name != "Me & I" || roster.Items[0].Subscription != "both" ||
		!reflect.DeepEqual(roster.Items[0].Groups, []string{"Owner"}) {
		t.Errorf("roster %s", show(roster))
	}
	if err := (&InIQ{ID: "x"}).Unmarshal(&roster); err == nil {
		t.Error("Unmarshal without payload: no error")
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	big := strings.Repeat("x", DefaultLimits.MaxBytes+1)
	for _, c := range []struct {
		name     string
		in       string
		sentinel error // nil: any *DecodeError
		stream   bool  // a syntax error of the stream, not a *DecodeError
	}{
		{"too deep", `<message id="d">` + deep + `</message>`, ErrTooDeep, false},
		{"too large text", `<message id="b"><body>` + big + `</body></message>`, ErrTooLarge, false},
		{"too large attribute", `<message id="b" from="` + big + `"/>`, ErrTooLarge, false},
		{"too many elements", `<message id="e">` + strings.Repeat("<x/>", DefaultLimits.MaxBytes/nodeCost+1) + `</message>`, ErrTooLarge, false},
		{"not a stanza", `<features xmlns="http://etherx.jabber.org/streams"/>`, ErrNotStanza, false},
		{"wrong namespace", `<message xmlns="jabber:server" id="w"/>`, ErrNotStanza, false},
		{"iq without id", `<iq type="get"><ping xmlns="urn:xmpp:ping"/></iq>`, nil, false},
		{"iq bad type", `<iq type="fetch" id="1"/>`, nil, false},
		{"iq get without payload", `<iq type="get" id="1"/>`, nil, false},
		{"trailing element", `<message id="1"/><message id="2"/>`, nil, false},
		{"text before", `junk<message id="1"/>`, ErrNotStanza, false},
		{"unclosed", `<message id="1"><body>`, nil, true},
		{"mismatched", `<message id="1"><body></message>`, nil, true},
		{"control char", "<message id=\"1\"><body>\x01</body></message>", nil, true},
		{"invalid utf-8", "<message id=\"1\"><body>\xff</body></message>", nil, true},
		{"empty", ``, nil, true},
	} {
		st, err := DecodeBytes([]byte(c.in))
		if err == nil {
			t.Errorf("%s: got %s, want an error", c.name, show(st))
			continue
		}
		var de *DecodeError
		if isDecode := errors.As(err, &de); isDecode == c.stream {
			t.Errorf("%s: error %v (%T), *DecodeError: %v, want %v", c.name, err, err, isDecode, !c.stream)
		}
		if c.sentinel != nil && !errors.Is(err, c.sentinel) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.sentinel)
		}
	}
}

// TestDecodeStream reads a stream as the session does: a *DecodeError
// drops one stanza and the next one still decodes.
func TestDecodeStream(t *testing.T) {
	stream := `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" from="example.org" id="s1" version="1.0">` +
		`<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>` +
		`<message from="owner@example.org/a" id="1"><body>one</body></message>` + "\n" +
		`<message from="owner@example.org/a" id="2"><body>` + strings.Repeat("big ", DefaultLimits.MaxBytes/4+1) + `</body><x/></message>` +
		`<message from="owner@example.org/a" id="3">` + strings.Repeat("<a>", 50) + strings.Repeat("</a>", 50) + `<body>deep</body></message>` +
		`<iq type="get" from="example.org"><ping xmlns="urn:xmpp:ping"/></iq>` +
		`<presence from="owner@example.org/a"/>` +
		`<message from="owner@example.org/a" id="4"><body>four</body></message>` +
		`</stream:stream>`
	d := xml.NewDecoder(strings.NewReader(stream))
	var got []string
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("stream: %v (got %v)", err, got)
		}
		if _, ok := tok.(xml.EndElement); ok {
			break // </stream:stream>
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Local == "stream" {
			continue
		}
		st, err := Decode(d, start)
		var de *DecodeError
		switch {
		case errors.As(err, &de):
			got = append(got, "drop "+de.ID+":"+de.Reason)
		case err != nil:
			t.Fatalf("stream error %v", err)
		default:
			switch s := st.(type) {
			case *Inbound:
				got = append(got, "message "+s.ID+" "+s.Body)
			case *InPresence:
				got = append(got, "presence "+s.From)
			case *InIQ:
				got = append(got, "iq "+s.ID)
			}
		}
	}
	want := []string{
		"drop :not a stanza (namespace http://etherx.jabber.org/streams)",
		"message 1 one",
		"drop 2:stanza too large",
		"drop 3:stanza nested too deeply",
		"drop :no id",
		"presence owner@example.org/a",
		"message 4 four",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestDecodeLimits checks that a custom Limits applies.
func TestDecodeLimits(t *testing.T) {
	l := Limits{MaxBytes: 200, MaxDepth: 2}
	if _, err := l.DecodeBytes([]byte(`<message id="1"><body>short</body></message>`)); err != nil {
		t.Errorf("small message: %v", err)
	}
	if _, err := l.DecodeBytes([]byte(`<message id="1"><body>` + strings.Repeat("y", 300) + `</body></message>`)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large message: %v, want ErrTooLarge", err)
	}
	if _, err := l.DecodeBytes([]byte(`<message id="1"><x><y/></x></message>`)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep message: %v, want ErrTooDeep", err)
	}
	if _, err := (Limits{}).DecodeBytes([]byte(`<message/>`)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("zero limits: %v, want ErrTooDeep", err)
	}
}

// TestEncodeRoundTripReply checks the fallback range end to end, with text that
// needs cleaning and multi-byte characters.
func TestEncodeRoundTripReply(t *testing.T) {
	m := Message{ID: "m", To: "owner@example.org", Body: "*Bob*: 👍🏽 ok\x07", Reply: &Reply{To: "bot@example.org", ID: "m0"},
		Quote: "*Alice* in *Family*:\nline\x00two 🇩🇪\n\n"}
	b, err := EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	in := st.(*Inbound)
	if got := in.BodyWithoutFallback(NSReply); got != "*Bob*: 👍🏽 ok" {
		t.Errorf("BodyWithoutFallback = %q", got)
	}
	if want := "> *Alice* in *Family*:\n> linetwo 🇩🇪\n*Bob*: 👍🏽 ok"; in.Body != want {
		t.Errorf("Body = %q, want %q", in.Body, want)
	}
}
