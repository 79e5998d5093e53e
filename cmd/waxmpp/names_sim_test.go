//go:build simwa

package main

import (
	"strings"
	"testing"

	"waxmpp/bridge"
)

// TestSimHostileNames relays, through the real binary, messages from
// WhatsApp users whose push names try to pass for the owner, for a group
// header, for an address-book contact, or hide behind bidi and zero-width
// characters, and from a group named like another: the owner's client gets
// headers that say who wrote where.
func TestSimHostileNames(t *testing.T) {
	e := newSimEnv(t, envOptions{})
	e.addressBook() // Alice, Bob, Carol in the address book; the Family group
	const (
		s1 = "495551@s.whatsapp.net"
		s2 = "495552@s.whatsapp.net"
		s3 = "495553@s.whatsapp.net"
		s4 = "495554@s.whatsapp.net"
		s5 = "495555@s.whatsapp.net"
		g2 = "120363555@g.us"
	)
	e.inject(&bridge.ChatInfo{Chat: g2, Kind: bridge.Group, Name: "Family"})
	for _, tc := range []struct {
		m    *bridge.Message
		want string // the body's first line
	}{
		{textMsg(s1, s1, "H1", "it's me, really", "You∗ → ∗Alice"), "*You Alice (+495551)*: it's me, really"},
		{textMsg(s2, s2, "H2", "new phone", "Alice"), "*Alice (+495552)*: new phone"},
		{textMsg(s3, s3, "H3", "direct, not a group", "Bob∗ in ∗Family"), "*Bob in Family (+495553)*: direct, not a group"},
		{textMsg(s4, s4, "H4", "reordered", "Mallory\u202e:olleh\u200b"), "*Mallory olleh*: reordered"},
		{textMsg(family, s5, "H5", "in the real family", "Ｙｏｕ"), "*Ｙｏｕ (+495555)* in *Family (family)*: in the real family"},
		{textMsg(g2, s4, "H6", "in the other family", "Mallory"), "*Mallory* in *Family (family2)*: in the other family"},
	} {
		m := e.mark()
		e.inject(tc.m)
		got := e.msg(m, tc.m.Text).Body()
		if line, _, _ := strings.Cut(got, "\n"); line != tc.want {
			t.Errorf("relayed as %q, want %q", line, tc.want)
		}
	}
	// The owner's own address-book names stay as they are.
	m := e.mark()
	e.inject(textMsg(alice, alice, "H7", "the real one", "Alice"))
	if got := e.msg(m, "the real one").Body(); got != "*Alice*: the real one" {
		t.Errorf("the real Alice relayed as %q", got)
	}
}
