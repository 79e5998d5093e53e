package bridge

import "testing"

func TestParseCommandPrefixes(t *testing.T) {
	for _, tt := range []struct {
		body, name, args string
		ok               bool
	}{
		{"/help", "help", "", true},
		{"!help", "help", "", true},
		{"!To alice", "to", "alice", true},
		{"!msg alice hi there", "msg", "alice hi there", true},
		{"//help", "", "", false},
		{"!!help", "", "", false},
		{"!!!", "", "", false},
		{"! wow", "", "", false},
		{"!1", "", "", false},
		{"!", "", "", false},
		{"hi!", "", "", false},
	} {
		name, args, ok := parseCommand(tt.body)
		if name != tt.name || args != tt.args || ok != tt.ok {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.body, name, args, ok, tt.name, tt.args, tt.ok)
		}
	}
	for _, tt := range []struct{ body, want string }{
		{"//shrug", "/shrug"},
		{"!!wow", "!wow"},
		{"!!!", "!!!"},
		{"!! x", "!! x"},
		{"plain", "plain"},
	} {
		if got, _ := unescapeText(tt.body); got != tt.want {
			t.Errorf("unescapeText(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestForms(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/help lists the commands", "!help lists the commands"},
		{"Send /pair (or /pair +number).", "Send !pair (or !pair +number)."},
		{`use "/to alice"`, `use "!to alice"`},
		{"/etc/hosts and /tomorrow and /to/x", "/etc/hosts and /tomorrow and /to/x"},
		{"//text sends /text", "//text sends /text"},
		{"a/b /sub request x /cmd list", "a/b /sub request x /cmd list"},
		{"/new +4917", "!new +4917"},
		{"line\n> /to quoted\n/cancel drops it", "line\n> /to quoted\n!cancel drops it"},
		{"Alice: /new +496666", "Alice: !new +496666"},
	} {
		if got := forms(tt.in, true); got != tt.want {
			t.Errorf("forms(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := forms(tt.in, false); got != tt.in {
			t.Errorf("forms(%q, false) = %q, want it unchanged", tt.in, got)
		}
	}
}

func TestIdentifyClient(t *testing.T) {
	for _, tt := range []struct{ node, name, want string }{
		{"http://profanity-im.github.io", "", "Profanity"},
		{"", "Profanity 0.13.1", "Profanity"},
		{"https://gajim.org", "Gajim", "Gajim"},
		{"https://poez.io", "Poezio", "poezio"},
		{"https://dino.im", "Dino", "Dino"},
		{"http://conversations.im", "Conversations", "Conversations"},
		{"https://cheogram.com", "Cheogram", "Conversations"},
		{"http://monal.im/", "Monal", "Monal"},
		{"https://siskin.im", "Siskin IM", "Siskin"},
		{"http://slixmpp.com/ver/1.8.3", "", ""},
		{"", "", ""},
	} {
		if got := identifyClient(tt.node, tt.name).Name; got != tt.want {
			t.Errorf("identifyClient(%q, %q) = %q, want %q", tt.node, tt.name, got, tt.want)
		}
	}
}
