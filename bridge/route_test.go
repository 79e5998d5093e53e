package bridge

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var handles = map[string]ChatID{"alice": "a@s.whatsapp.net", "bob": "b@s.whatsapp.net", "family": "f@g.us"}

// resolveFake resolves the handles above; "fam" could be two chats.
func resolveFake(n string) (ChatID, []ChatID) {
	if strings.EqualFold(n, "fam") {
		return "", []ChatID{"f@g.us", "g@g.us"}
	}
	return handles[strings.ToLower(n)], nil
}

func link(chat, id, excerpt string) MsgLink {
	return MsgLink{WA: MessageKey{Chat: chat, Sender: "x@s.whatsapp.net", ID: id}, XMPPID: relayID(MessageKey{Chat: chat, ID: id}), Excerpt: excerpt}
}

func TestDecide(t *testing.T) {
	fam := link("f@g.us", "F1", "dinner sunday?")
	ali := link("a@s.whatsapp.net", "A1", "ok")
	bobOK := link("b@s.whatsapp.net", "B1", "ok")
	long := link("b@s.whatsapp.net", "B2", strings.Repeat("long text ", 16))
	recent := []MsgLink{fam, ali, bobOK, long}
	tests := []struct {
		name string
		in   routeIn
		want routeOut
	}{
		{"reply", routeIn{Body: "yes", ReplyTo: fam.XMPPID, Reply: &fam, Current: "a@s.whatsapp.net", Since: []ChatID{"b@s.whatsapp.net"}},
			routeOut{Action: actSend, Chat: "f@g.us", Text: "yes", Quote: &fam, Rule: "reply"}},
		{"escaped slash in a reply", routeIn{Body: "//x", ReplyTo: fam.XMPPID, Reply: &fam},
			routeOut{Action: actSend, Chat: "f@g.us", Text: "/x", Quote: &fam, Rule: "reply"}},
		{"reply unknown", routeIn{Body: "yes", ReplyTo: "zzz", Current: "a@s.whatsapp.net"},
			routeOut{Action: actReject, Rule: "reply"}},
		{"reply empty", routeIn{Body: " ", ReplyTo: fam.XMPPID, Reply: &fam},
			routeOut{Action: actReject, Rule: "reply"}},
		{"quote with header", routeIn{Body: "> *Carol* in *Family*: dinner sunday?\nyes", Recent: recent, Current: "a@s.whatsapp.net"},
			routeOut{Action: actSend, Chat: "f@g.us", Text: "yes", Quote: &fam, Rule: "quote"}},
		{"quote without header, styled", routeIn{Body: ">dinner  _sunday_?\n\nyes\n", Recent: recent},
			routeOut{Action: actSend, Chat: "f@g.us", Text: "yes", Quote: &fam, Rule: "quote"}},
		{"quote prefix", routeIn{Body: "> dinner sun…\nyes", Recent: recent},
			routeOut{Action: actSend, Chat: "f@g.us", Text: "yes", Quote: &fam, Rule: "quote"}},
		{"quote too short a prefix: it matches nothing, ask", routeIn{Body: "> din\nyes", Recent: recent, Current: "a@s.whatsapp.net"},
			routeOut{Action: actHold, Text: "> din\nyes", Candidates: []ChatID{"a@s.whatsapp.net"}, Rule: "quote"}},
		{"quote of a cut excerpt", routeIn{Body: "> " + strings.Repeat("long text ", 20) + "\nyes", Recent: recent},
			routeOut{Action: actSend, Chat: "b@s.whatsapp.net", Text: "yes", Quote: &long, Rule: "quote"}},
		{"quote ambiguous", routeIn{Body: "> ok\nfine", Recent: recent, Current: "f@g.us"},
			routeOut{Action: actHold, Text: "> ok\nfine", Candidates: []ChatID{"a@s.whatsapp.net", "b@s.whatsapp.net"}, Rule: "quote"}},
		{"quote, nothing after", routeIn{Body: "> dinner sunday?", Recent: recent},
			routeOut{Action: actReject, Rule: "quote"}},
		{"quote, no match, no current", routeIn{Body: "> whatever\nhi", Recent: recent},
			routeOut{Action: actHold, Text: "> whatever\nhi", Rule: "quote"}},
		{"quote of a relayed reply: its quoted lines and header", routeIn{Body: "> *Bob*:\n> > something old\n> ok\nfine", Recent: []MsgLink{bobOK}},
			routeOut{Action: actSend, Chat: "b@s.whatsapp.net", Text: "fine", Quote: &bobOK, Rule: "quote"}},
		{"quote of the question answers it", routeIn{Body: "> 2 held messages: Send to 1) Alice 2) Family? Answer 1 or 2.\n2", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "f@g.us", Rule: "answer"}},
		{"quote of the question, nothing held", routeIn{Body: "> Send to 1) Alice 2) Family? Answer 1 or 2.\n2", Current: "a@s.whatsapp.net"},
			routeOut{Action: actReject, Rule: "quote"}},
		{"quote of the question, no answer in it", routeIn{Body: "> Send to 1) Alice? Answer 1.\nwhat?", Held: true, Question: []ChatID{"a@s.whatsapp.net"}},
			routeOut{Action: actReject, Rule: "quote"}},
		{"reply to the question", routeIn{Body: "1", ReplyTo: "q1", ToQuestion: true, Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "a@s.whatsapp.net", Rule: "answer"}},
		{"reply to an old question", routeIn{Body: "1", ReplyTo: "q1", ToQuestion: true, Current: "a@s.whatsapp.net"},
			routeOut{Action: actReject, Rule: "reply"}},
		{"/msg to an ambiguous name asks", routeIn{Body: "/msg fam hi", Current: "a@s.whatsapp.net"},
			routeOut{Action: actHold, Text: "hi", Candidates: []ChatID{"f@g.us", "g@g.us"}, Rule: "msg"}},
		{"answer 2.", routeIn{Body: "2.", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "f@g.us", Rule: "answer"}},
		{"answer (2)", routeIn{Body: "(2)", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "f@g.us", Rule: "answer"}},
		{"answer keycap", routeIn{Body: "2\ufe0f\u20e3", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "f@g.us", Rule: "answer"}},
		{"an ambiguous handle is no answer", routeIn{Body: "fam", Held: true, Question: []ChatID{"a@s.whatsapp.net"}},
			routeOut{Action: actReject, Rule: "answer"}},
		{"/msg", routeIn{Body: "/msg Bob  hi there", Current: "a@s.whatsapp.net", Since: []ChatID{"f@g.us"}},
			routeOut{Action: actSend, Chat: "b@s.whatsapp.net", Text: "hi there", Rule: "msg"}},
		{"/MSG unknown", routeIn{Body: "/MSG carol hi"}, routeOut{Action: actReject, Rule: "msg"}},
		{"/msg no text", routeIn{Body: "/msg bob"}, routeOut{Action: actReject, Rule: "msg"}},
		{"/to is a command", routeIn{Body: "/to bob"}, routeOut{Action: actCommand, Rule: "command"}},
		{"a command in a reply is a command", routeIn{Body: "/mute family", ReplyTo: fam.XMPPID, Reply: &fam}, routeOut{Action: actCommand, Rule: "command"}},
		{"/msg in a reply", routeIn{Body: "/msg bob hi", ReplyTo: fam.XMPPID, Reply: &fam}, routeOut{Action: actSend, Chat: "b@s.whatsapp.net", Text: "hi", Rule: "msg"}},
		{"current, quiet", routeIn{Body: "hi", Current: "a@s.whatsapp.net"},
			routeOut{Action: actSend, Chat: "a@s.whatsapp.net", Text: "hi", Rule: "current"}},
		{"escaped slash", routeIn{Body: "//me waves", Current: "a@s.whatsapp.net"},
			routeOut{Action: actSend, Chat: "a@s.whatsapp.net", Text: "/me waves", Rule: "current"}},
		{"current, others spoke", routeIn{Body: "hi", Current: "a@s.whatsapp.net", Since: []ChatID{"f@g.us", "b@s.whatsapp.net", "a@s.whatsapp.net"}},
			routeOut{Action: actHold, Text: "hi", Candidates: []ChatID{"a@s.whatsapp.net", "f@g.us", "b@s.whatsapp.net"}, Rule: "plain"}},
		{"no current, one spoke: still ask", routeIn{Body: "hi", Since: []ChatID{"f@g.us"}},
			routeOut{Action: actHold, Text: "hi", Candidates: []ChatID{"f@g.us"}, Rule: "plain"}},
		{"no current, nothing", routeIn{Body: "hi"}, routeOut{Action: actHold, Text: "hi", Rule: "plain"}},
		{"candidates capped", routeIn{Body: "hi", Current: "c0", Since: []ChatID{"c1", "c2", "c3", "c4", "c5", "c6"}},
			routeOut{Action: actHold, Text: "hi", Candidates: []ChatID{"c0", "c1", "c2", "c3", "c4"}, Rule: "plain"}},
		{"answer number", routeIn{Body: " 2 ", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "f@g.us", Rule: "answer"}},
		{"answer handle", routeIn{Body: "@Bob", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actAnswer, Chat: "b@s.whatsapp.net", Rule: "answer"}},
		{"answer out of range", routeIn{Body: "3", Held: true, Question: []ChatID{"a@s.whatsapp.net", "f@g.us"}},
			routeOut{Action: actReject, Rule: "answer"}},
		{"while held, text is held too", routeIn{Body: "more", Held: true, Current: "a@s.whatsapp.net", Question: []ChatID{"a@s.whatsapp.net"}},
			routeOut{Action: actHold, Text: "more", Candidates: []ChatID{"a@s.whatsapp.net"}, Rule: "plain"}},
		{"a number without a question is text", routeIn{Body: "2", Current: "a@s.whatsapp.net"},
			routeOut{Action: actSend, Chat: "a@s.whatsapp.net", Text: "2", Rule: "current"}},
		{"empty", routeIn{Body: "  ", Current: "a@s.whatsapp.net"}, routeOut{Action: actReject, Rule: "plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Resolve = resolveFake
			got := decide(tt.in)
			got.Problem = "" // the words are in the command golden file
			if got.Action != tt.want.Action || got.Chat != tt.want.Chat || got.Text != tt.want.Text || got.Rule != tt.want.Rule ||
				strings.Join(ids(got.Candidates), ",") != strings.Join(ids(tt.want.Candidates), ",") || (got.Quote == nil) != (tt.want.Quote == nil) ||
				got.Quote != nil && got.Quote.WA != tt.want.Quote.WA {
				t.Errorf("decide(%q)\ngot  %+v\nwant %+v", tt.in.Body, got, tt.want)
			}
		})
	}
}

func ids(cs []ChatID) []string {
	var s []string
	for _, c := range cs {
		s = append(s, string(c))
	}
	return s
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in, name, args string
		ok             bool
	}{
		{"/help", "help", "", true},
		{"/To  Alice ", "to", "Alice", true},
		{"/msg bob hi\nthere", "msg", "bob hi\nthere", true},
		{"/", "", "", true},
		{"//x", "", "", false},
		{" /help", "", "", false},
		{"hello", "", "", false},
		{"/mute\tfamily 8h", "mute", "family 8h", true},
	}
	for _, tt := range tests {
		name, args, ok := parseCommand(tt.in)
		if name != tt.name || args != tt.args || ok != tt.ok {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, args, ok, tt.name, tt.args, tt.ok)
		}
	}
}

func TestParseGeo(t *testing.T) {
	tests := []struct {
		in       string
		lat, lon float64
		ok       bool
	}{
		{"geo:52.52,13.405", 52.52, 13.405, true},
		{"GEO:-1,2;u=35", -1, 2, true},
		{"geo:1,2,100", 1, 2, true},
		{"geo:91,0", 0, 0, false},
		{"geo:1", 0, 0, false},
		{"see geo:1,2", 0, 0, false},
		{"geo:1,2 here", 0, 0, false},
	}
	for _, tt := range tests {
		g, ok := parseGeo(tt.in)
		if ok != tt.ok || ok && (g.Lat != tt.lat || g.Lon != tt.lon) {
			t.Errorf("parseGeo(%q) = %+v, %v", tt.in, g, ok)
		}
	}
}

func TestMuteDuration(t *testing.T) {
	for in, ok := range map[string]bool{"8h": true, "30m": true, "2d": true, "1w": true, "1h30m": true, "0d": false, "soon": false, "30s": false, "99999w": false, "-1h": false} {
		if _, got := parseMuteDuration(in); got != ok {
			t.Errorf("parseMuteDuration(%q) ok = %v, want %v", in, got, ok)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/help", "/To  Alice ", "//x", "/", "/msg bob hi\nthere", "/\u00a0x", "/MUTE family 8h", "x/y",
		"!help", "!To alice", "!!x", "!", "! wow", "!!!", "!1", "!é"} {
		f.Add(s)
	}
	// A command starts with "/" (not "//") or with "!" and an ASCII letter.
	command := func(s string) bool {
		return strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") ||
			len(s) > 1 && s[0] == '!' && (s[1] >= 'a' && s[1] <= 'z' || s[1] >= 'A' && s[1] <= 'Z')
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, args, ok := parseCommand(s)
		if ok != command(s) {
			t.Fatalf("%q: command %v, want %v", s, ok, command(s))
		}
		if !ok {
			return
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' }) {
			t.Fatalf("name %q has spaces", name)
		}
		if utf8.ValidString(s) && name != strings.ToLower(name) {
			t.Fatalf("name %q not lower case", name)
		}
		if args != strings.TrimSpace(args) {
			t.Fatalf("args %q not trimmed", args)
		}
		if utf8.ValidString(s) && !strings.Contains(strings.ToLower(s), name) {
			t.Fatalf("name %q not from %q", name, s)
		}
	})
}

// FuzzRoute feeds random owner messages and relayed-message histories to
// decide and checks the routing invariant: when it sends, the chat
// is provably the target — the reply's chat, the only chat whose message
// the quote matches, the /msg target, or the current chat when no other
// chat spoke since; an answer names a chat of the question or a handle.
func FuzzRoute(f *testing.F) {
	f.Add("hi", "", uint8(0), uint8(0), "ok|dinner", uint8(1), false)
	f.Add("> ok\nfine", "", uint8(3), uint8(0), "ok|ok", uint8(0), false)
	f.Add("/msg bob hi", "", uint8(1), uint8(2), "x", uint8(1), false)
	f.Add("2", "", uint8(1), uint8(1), "", uint8(3), true)
	f.Add("yes", "wa-x", uint8(2), uint8(0), "a", uint8(0), false)
	f.Add("2.", "q", uint8(1), uint8(1), "", uint8(3), true)
	f.Add("> Send to 1) Alice? Answer 1.\n1", "", uint8(0), uint8(0), "", uint8(1), true)
	f.Add("/msg fam hi", "", uint8(0), uint8(3), "", uint8(0), false)
	f.Add("> *A*: dinner sunday?\nyes", "", uint8(1), uint8(0), "dinner sunday?|ok", uint8(2), false)
	chats := []ChatID{"a@s.whatsapp.net", "b@s.whatsapp.net", "f@g.us", "c@s.whatsapp.net"}
	f.Fuzz(func(t *testing.T, body, replyTo string, current, since uint8, excerpts string, question uint8, held bool) {
		in := routeIn{Body: body, ReplyTo: replyTo, Held: held, Resolve: resolveFake, ToQuestion: replyTo == "q"}
		if current%5 < 4 {
			in.Current = chats[current%5]
		}
		for i := range 4 {
			if since&(1<<i) != 0 && chats[i] != in.Current {
				in.Since = append(in.Since, chats[i])
			}
		}
		// The relayed messages: each excerpt to a chat chosen by its index.
		for i, e := range strings.Split(excerpts, "|") {
			in.Recent = append(in.Recent, link(string(chats[(i+int(since))%4]), "M"+string(rune('a'+i%26)), e))
		}
		if replyTo != "" && len(in.Recent) > 0 && replyTo[0]%2 == 0 {
			in.Reply = &in.Recent[int(replyTo[0])%len(in.Recent)]
		}
		if held {
			for i := range int(question % 5) {
				in.Question = append(in.Question, chats[i%4])
			}
		}
		out := decide(in)
		switch out.Action {
		case actSend:
			switch out.Rule {
			case "reply":
				if _, _, cmd := parseCommand(body); cmd || in.ToQuestion || in.Reply == nil || out.Chat != ChatID(in.Reply.WA.Chat) {
					t.Fatalf("reply sent to %s, target %+v", out.Chat, in.Reply)
				}
			case "quote":
				if in.ReplyTo != "" {
					t.Fatal("quote rule overrode a reply")
				}
				q, _, ok := splitQuote(body)
				cs, _ := matchQuote(q, in.Recent)
				if !ok || len(cs) != 1 || cs[0] != out.Chat || out.Quote == nil || ChatID(out.Quote.WA.Chat) != out.Chat {
					t.Fatalf("quote sent to %s; matches %v", out.Chat, cs)
				}
			case "msg":
				name, args, _ := parseCommand(body)
				target, _, _ := strings.Cut(args, " ")
				want, _ := resolveFake(target)
				if name != "msg" || want == "" || want != out.Chat {
					t.Fatalf("/msg sent to %s, body %q", out.Chat, body)
				}
			case "current":
				if in.ReplyTo != "" || in.Held || in.Current == "" || len(in.Since) != 0 || out.Chat != in.Current {
					t.Fatalf("plain text sent to %s: current %s, since %v, held %v", out.Chat, in.Current, in.Since, in.Held)
				}
				if _, _, quoted := splitQuote(strings.TrimPrefix(body, "/")); quoted {
					t.Fatalf("a quote that matched nothing went to the current chat: %q", body)
				}
			default:
				t.Fatalf("send by rule %q", out.Rule)
			}
			if out.Chat == "" {
				t.Fatal("send without a chat")
			}
		case actAnswer:
			if !in.Held || in.ReplyTo != "" && !in.ToQuestion {
				t.Fatalf("answer while nothing held")
			}
			okChat := false
			for _, c := range in.Question {
				okChat = okChat || c == out.Chat
			}
			for _, c := range handles {
				okChat = okChat || c == out.Chat
			}
			if !okChat {
				t.Fatalf("answer to %s, not a candidate nor a handle", out.Chat)
			}
		case actHold:
			if out.Text == "" || len(out.Candidates) > maxCandidates {
				t.Fatalf("hold %+v", out)
			}
		case actReject:
			if out.Problem == "" {
				t.Fatal("reject without a problem")
			}
		case actCommand:
			if _, _, ok := parseCommand(body); !ok {
				t.Fatal("command that does not parse")
			}
		default:
			t.Fatalf("action %v", out.Action)
		}
	})
}
