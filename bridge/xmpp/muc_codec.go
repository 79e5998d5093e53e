package xmpp

// The stanzas of group chats (XEP-0045) and their invitations (XEP-0249):
// what the bot reads of a room (muc#user), and the requests it writes.

import (
	"slices"
	"strconv"
	"strings"
)

// Namespaces of group chats.
const (
	NSMUC        = "http://jabber.org/protocol/muc"       // XEP-0045 join
	NSMUCUser    = "http://jabber.org/protocol/muc#user"  // XEP-0045 occupants, status codes
	NSMUCAdmin   = "http://jabber.org/protocol/muc#admin" // XEP-0045 affiliations
	NSMUCOwner   = "http://jabber.org/protocol/muc#owner" // XEP-0045 configuration, destruction
	NSRoomConfig = "http://jabber.org/protocol/muc#roomconfig"
	NSConference = "jabber:x:conference" // XEP-0249 direct invitation
)

// MUCUser is the muc#user <x/> of a presence or message from a room.
type MUCUser struct {
	JID         string // the occupant's real JID (item jid), if the room shows it
	Nick        string // item nick
	Affiliation string
	Role        string
	Codes       []int // status codes
	Destroyed   bool  // <destroy/>: the room is gone
	Reason      string
}

// Has reports whether status code c is among u's.
func (u *MUCUser) Has(c int) bool { return u != nil && slices.Contains(u.Codes, c) }

// parseMUCUser reads a muc#user <x/>.
func parseMUCUser(c *node) *MUCUser {
	u := &MUCUser{}
	for k := range c.children() {
		if k.name.Space != NSMUCUser {
			continue
		}
		switch k.name.Local {
		case "item":
			u.JID, u.Nick = Clean(k.attr("jid")), Clean(k.attr("nick"))
			u.Affiliation, u.Role = Clean(k.attr("affiliation")), Clean(k.attr("role"))
			if r := k.child(NSMUCUser, "reason"); r != nil && u.Reason == "" {
				u.Reason = Clean(r.text())
			}
		case "status":
			if n, err := strconv.Atoi(k.attr("code")); err == nil && n >= 100 && n <= 999 {
				u.Codes = append(u.Codes, n)
			}
		case "destroy":
			u.Destroyed = true
			if r := k.child(NSMUCUser, "reason"); r != nil {
				u.Reason = Clean(r.text())
			}
		}
	}
	return u
}

// joinPresence enters room as nick (XEP-0045 §7.2) asking for no history:
// what the bot missed comes from the room's archive instead, never as new.
func joinPresence(room, nick, show, status string, caps *Caps) []byte {
	var w writer
	w.open("presence", "", "to", room+"/"+nick)
	if show != "" {
		w.elem("show", "", show)
	}
	if status != "" {
		w.elem("status", "", status)
	}
	w.open("x", NSMUC)
	w.empty("history", "", "maxstanzas", "0")
	w.close()
	if caps != nil {
		w.empty("c", NSCaps, "hash", caps.Hash, "node", caps.Node, "ver", caps.Ver)
	}
	w.close()
	return w.bytes()
}

// leavePresence leaves room.
func leavePresence(room, nick string) []byte {
	var w writer
	w.empty("presence", "", "to", room+"/"+nick, "type", "unavailable")
	return w.bytes()
}

// roomQuery is a muc#owner or muc#admin IQ payload.
func roomQuery(ns string, inner func(w *writer)) Inner {
	var w writer
	w.open("query", ns)
	if inner != nil {
		inner(&w)
	}
	w.close()
	return Inner{w.bytes()}
}

// configForm is a room's configuration form as the server offers it
// (XEP-0045 §10.2): each field's variable and its current values.
type configForm struct {
	X struct {
		Fields []configField `xml:"field"`
	} `xml:"jabber:x:data x"`
}

type configField struct {
	Var    string   `xml:"var,attr"`
	Type   string   `xml:"type,attr"`
	Values []string `xml:"value"`
}

// has reports whether the form offers field v.
func (f configForm) has(v string) bool {
	return slices.ContainsFunc(f.X.Fields, func(x configField) bool { return x.Var == v })
}

// value is field v's first value, "" when it has none; a boolean field
// without a value is false (XEP-0004 §3.3), as Prosody sends it.
func (f configForm) value(v string) string {
	for _, x := range f.X.Fields {
		switch {
		case x.Var != v:
		case len(x.Values) > 0:
			return strings.TrimSpace(x.Values[0])
		case x.Type == "boolean":
			return "0"
		}
	}
	return ""
}

// roomSetting is one configuration field the bot sets.
type roomSetting struct{ Var, Value string }

// roomSettings is what makes a room private to the owner: members-only,
// non-anonymous (the bot tells the owner from strangers by real JID),
// persistent, hidden, archived, nobody else invited, no private messages.
// Servers name some of these their own way (Prosody's member invites,
// ejabberd's mam and public_list); only the fields a server's form offers
// are sent, since ejabberd refuses a whole form with one unknown field.
func roomSettings(name string) []roomSetting {
	return []roomSetting{
		{"muc#roomconfig_roomname", name},
		{"muc#roomconfig_roomdesc", "WhatsApp, relayed by waxmpp"},
		{"muc#roomconfig_persistentroom", "1"},
		{"muc#roomconfig_publicroom", "0"},
		{"muc#roomconfig_membersonly", "1"},
		{"muc#roomconfig_whois", "anyone"},
		{"muc#roomconfig_passwordprotectedroom", "0"},
		{"muc#roomconfig_allowinvites", "0"},
		{"{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites", "0"},
		{"muc#roomconfig_changesubject", "0"},
		{"muc#roomconfig_moderatedroom", "0"},
		{"muc#roomconfig_enablearchiving", "1"}, // Prosody's mod_muc_mam
		{"mam", "1"},                            // ejabberd
		{"public_list", "0"},                    // ejabberd
		{"allow_private_messages", "0"},         // ejabberd
		{"muc#roomconfig_allowpm", "none"},
		{"allow_query_users", "0"},    // ejabberd
		{"allow_subscription", "0"},   // ejabberd's MucSub
		{"members_by_default", "1"},   // ejabberd: members may speak
		{"allow_voice_requests", "0"}, // ejabberd
	}
}

// sameValue compares form values, booleans as XEP-0004 writes them
// either way ("1"/"true", "0"/"false").
func sameValue(a, b string) bool {
	norm := func(s string) string {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "1", "true":
			return "1"
		case "0", "false":
			return "0"
		}
		return strings.TrimSpace(s)
	}
	return norm(a) == norm(b)
}

// settingsToChange returns the settings the form offers, and whether any
// of them differs from what the form holds now.
func settingsToChange(f configForm, want []roomSetting) (offered []roomSetting, differs bool) {
	for _, s := range want {
		if !f.has(s.Var) {
			continue
		}
		offered = append(offered, s)
		if !sameValue(f.value(s.Var), s.Value) {
			differs = true
		}
	}
	return offered, differs
}

// configSubmit is the muc#owner payload that submits settings.
func configSubmit(settings []roomSetting) Inner {
	return roomQuery(NSMUCOwner, func(w *writer) {
		w.open("x", NSDataForms, "type", "submit")
		w.open("field", "", "var", "FORM_TYPE")
		w.elem("value", "", NSRoomConfig)
		w.close()
		for _, s := range settings {
			w.open("field", "", "var", s.Var)
			w.elem("value", "", s.Value)
			w.close()
		}
		w.close()
	})
}

// affiliationItems is a muc#admin result: the JIDs of one affiliation.
type affiliationItems struct {
	Items []struct {
		JID         string `xml:"jid,attr"`
		Affiliation string `xml:"affiliation,attr"`
	} `xml:"http://jabber.org/protocol/muc#admin item"`
}

// inviteMessage is an XEP-0249 direct invitation of to into room.
func inviteMessage(id, to, room, reason string) []byte {
	var w writer
	w.open("message", "", "to", to, "id", id)
	w.empty("x", NSConference, "jid", room, "reason", reason)
	w.empty("origin-id", NSSID, "id", id)
	w.close()
	return w.bytes()
}
