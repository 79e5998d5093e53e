package xmpp

import (
	"reflect"
	"testing"
	"time"

	"waxmpp/bridge"
)

// Encrypted messages as clients send them. The profanity ones were
// captured from profanity 0.13.1 (Debian bookworm) writing to a bot
// account that had a stale OMEMO device (/omemo start), and after
// /otr start; the others follow what Conversations, Gajim and Dino send
// (their fallback bodies) and the examples of XEP-0384, XEP-0374 and
// XEP-0027.
var encryptedStanzas = []struct {
	name, xml string
	scheme    string // "" for no OwnerEncrypted
	want      bridge.OwnerEvent
}{
	{"profanity 0.13 OMEMO", `<message xml:lang="en" id="ZO88J3WTOaQhhLZ875c49f438f75bf8e5303809892ba1c6796e65a8" type="chat" from="owner@waxmpp.test/profanity.5KXZ" to="bot@waxmpp.test"><encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1429811835"><key prekey="true" rid="125970373">MwitwtQFEiEFSsaRcWKEO6q08geNWXIGjHpd+YyJSTl7AjiuzxRDUV8aIQWTUrmRkg+gedjcT8NTJBXcj9DpqkDvVBQESb9mRg71PyJiMwohBXjFLbDvYn4KzAzeNNWu4O8Nvu1L8Kt+zxahl1kQT1YsEAAYACIwjf6O9d+zETkesNNltJpT07pbYStxQOrnT9QKvur+ptPl0+XnfBny+Pf4sSFrtWm5AkSY2+jsYw8oADAB</key><iv>3JUdf5ET7ohhL0mG</iv></header><payload>0BetScRpYmblGJfS</payload></encrypted><body>You received a message encrypted with OMEMO but your client doesn&apos;t support OMEMO.</body><active xmlns="http://jabber.org/protocol/chatstates" /><store xmlns="urn:xmpp:hints" /><stanza-id xmlns="urn:xmpp:sid:0" by="bot@waxmpp.test" id="NHgOKXEataumYN5on0qWQRxU" /></message>`,
		"OMEMO", nil},
	{"profanity 0.13 /otr start", `<message xml:lang="en" id="8CeMDfhnexhmeM975787cf342aa58810c9ec86dd11f4487a3dad6ef" type="chat" from="owner@waxmpp.test/profanity.5KXZ" to="bot@waxmpp.test"><body>?OTR?v2? This user has requested an Off-the-Record private conversation. However, you do not have a plugin to support that. See http://otr.cypherpunks.ca/ for more information.</body><active xmlns="http://jabber.org/protocol/chatstates" /><no-copy xmlns="urn:xmpp:hints" /><no-store xmlns="urn:xmpp:hints" /></message>`,
		"OTR", nil},
	{"Conversations OMEMO", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="9f6c4b2e-2f1d-4b8e-9d8a-3c1e2b7a6f10" from="owner@waxmpp.test/Conversations.Ab3d"><encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1917338022"><key rid="125970373">MwohBQsDaJy7ifrZ</key><iv>nrn3Lh9Rmv2VnB3m</iv></header><payload>8jw9zKqa</payload></encrypted><request xmlns="urn:xmpp:receipts"/><markable xmlns="urn:xmpp:chat-markers:0"/><origin-id xmlns="urn:xmpp:sid:0" id="9f6c4b2e-2f1d-4b8e-9d8a-3c1e2b7a6f10"/><encryption xmlns="urn:xmpp:eme:0" name="OMEMO" namespace="eu.siacs.conversations.axolotl"/><body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that. Find more information on https://conversations.im/omemo</body><store xmlns="urn:xmpp:hints"/></message>`,
		"OMEMO", nil},
	{"Gajim OMEMO correction", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="c2" from="owner@waxmpp.test/gajim.X1"><replace xmlns="urn:xmpp:message-correct:0" id="c1"/><encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="77"><key rid="125970373">AA==</key><iv>AA==</iv></header><payload>AA==</payload></encrypted><encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl"/><body>You received a message encrypted with OMEMO but your client doesn't support OMEMO.</body><store xmlns="urn:xmpp:hints"/></message>`,
		"OMEMO", nil},
	{"Dino OMEMO", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="d1" from="owner@waxmpp.test/dino.a1"><body>[This message is OMEMO encrypted]</body><encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="5"><key rid="125970373">AA==</key><iv>AA==</iv></header><payload>AA==</payload></encrypted><encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl" name="OMEMO"/><markable xmlns="urn:xmpp:chat-markers:0"/></message>`,
		"OMEMO", nil},
	{"OMEMO 2", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="o2" from="owner@waxmpp.test/kaidan"><encrypted xmlns="urn:xmpp:omemo:2"><header sid="27183"><keys jid="bot@waxmpp.test"><key rid="31415" kex="true">AA==</key></keys></header><payload>AA==</payload></encrypted><encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:omemo:2" name="OMEMO 2"/><body>This message is encrypted with OMEMO 2.</body><store xmlns="urn:xmpp:hints"/></message>`,
		"OMEMO", nil},
	{"OpenPGP for XMPP", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="ox" from="owner@waxmpp.test/r"><openpgp xmlns="urn:xmpp:openpgp:0">BASE64_OPENPGP_MESSAGE</openpgp><encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:openpgp:0"/><body>This message is encrypted with OpenPGP for XMPP.</body><store xmlns="urn:xmpp:hints"/></message>`,
		"OpenPGP", nil},
	{"legacy PGP", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="pg" from="owner@waxmpp.test/r"><body>This message is encrypted.</body><x xmlns="jabber:x:encrypted">qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJ</x></message>`,
		"PGP", nil},
	{"OTR data", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="ot" from="owner@waxmpp.test/r"><body>?OTR:AAMDJ+MVmSfjFZcAAAAAAQAAAAIAAADA1g5IjD1ZGLDVQEyCgCyn9hbrL3KAbGDdzE2ZkMyTKl7XfkSxh8YJnudstiB74i4BzT0W2haClg6dMary/jo9sMudwmUdlnKpIGEKXWdvJKT+hQ26h9nzMgEditLB8v.</body><encryption xmlns="urn:xmpp:eme:0" namespace="urn:xmpp:otr:0"/></message>`,
		"OTR", nil},
	{"an unknown scheme's hint", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="un" from="owner@waxmpp.test/r"><encryption xmlns="urn:xmpp:eme:0" namespace="urn:example:future" name="Future Crypto"/><body>You cannot read this.</body></message>`,
		"Future Crypto", nil},
	{"OMEMO key exchange: nothing", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="kx" from="owner@waxmpp.test/r"><encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="5"><key prekey="true" rid="125970373">AA==</key><iv>AA==</iv></header></encrypted><store xmlns="urn:xmpp:hints"/></message>`,
		"", &bridge.OwnerOther{OwnerMeta: bridge.OwnerMeta{ID: "kx", Resource: "r"}}},
	{"plain text with OTR's whitespace tag", "<message xmlns=\"jabber:client\" to=\"bot@waxmpp.test\" type=\"chat\" id=\"wt\" from=\"owner@waxmpp.test/r\"><body>hello \t  \t\t\t\t \t \t \t    \t\t  \t   \t\t  \t\t there</body></message>",
		"", &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "wt", Resource: "r"}, Body: "hello there"}},
	{"a text about ?OTR is text", `<message xmlns="jabber:client" to="bot@waxmpp.test" type="chat" id="tx" from="owner@waxmpp.test/r"><body>what is ?OTR anyway</body></message>`,
		"", &bridge.OwnerText{OwnerMeta: bridge.OwnerMeta{ID: "tx", Resource: "r"}, Body: "what is ?OTR anyway"}},
}

// TestEncryptedNeverText: every encrypted message is an OwnerEncrypted
// naming its scheme, never a text with its fallback body.
func TestEncryptedNeverText(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range encryptedStanzas {
		t.Run(tc.name, func(t *testing.T) {
			st, err := DecodeBytes([]byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			got := OwnerEvent(st.(*Inbound), "", now)
			if tc.scheme != "" {
				e, ok := got.(*bridge.OwnerEncrypted)
				if !ok || e.Scheme != tc.scheme || e.ID == "" || e.Resource == "" {
					t.Fatalf("got %#v, want an OwnerEncrypted (%s) with id and resource", got, tc.scheme)
				}
				return
			}
			m := got.Meta()
			m.Time = time.Time{}
			switch g := got.(type) {
			case *bridge.OwnerOther:
				g.OwnerMeta = m
			case *bridge.OwnerText:
				g.OwnerMeta = m
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}
