package xmpp

// Service discovery (XEP-0030) and entity capabilities (XEP-0115): what the
// bot tells clients it supports, so that Conversations, Dino and Gajim send
// it receipts, markers, reactions, corrections and retractions.

import (
	"crypto/sha1" // XEP-0115 §5 mandates SHA-1; it is an identifier, not a security measure
	"encoding/base64"
	"slices"
	"strings"
)

// CapsNode identifies the bot's software in XEP-0115 <c node=…/>. Clients
// only compare it; it need not resolve.
const CapsNode = "https://waxmpp.invalid"

// Identity is an XEP-0030 identity.
type Identity struct {
	Category string // e.g. "client"
	Type     string // e.g. "bot"
	Lang     string // xml:lang; optional
	Name     string // optional
}

// Form is an XEP-0128 extended-info data form (type "result").
type Form struct {
	Type   string  // the FORM_TYPE value; forms without one are ignored by XEP-0115
	Fields []Field // without FORM_TYPE
}

// Field is one data form field.
type Field struct {
	Var    string
	Values []string
}

// DiscoInfo is an XEP-0030 disco#info answer.
type DiscoInfo struct {
	Identities []Identity
	Features   []string
	Forms      []Form
}

// BotDiscoInfo returns what the bot supports.
func BotDiscoInfo() DiscoInfo {
	return DiscoInfo{
		Identities: []Identity{{Category: "client", Type: "bot", Name: "waxmpp"}},
		Features: []string{
			NSDiscoInfo,
			NSCaps,
			NSPing,
			NSReceipts,
			NSMarkers,
			NSChatStates,
			NSCorrect,
			NSRetract,
			NSRetract0,
			NSReactions,
			NSReply,
			NSFallback,
			NSOOB,
			NSDelay,
			NSSID,
			NSCommands,
			NSStyling,
		},
	}
}

// Ver is the XEP-0115 verification string of info.
func (info DiscoInfo) Ver() string {
	return CapsVer(info.Identities, info.Features, info.Forms...)
}

// Caps returns the <c/> element to put in the bot's presence.
func (info DiscoInfo) Caps() *Caps {
	return &Caps{Hash: "sha-1", Node: CapsNode, Ver: info.Ver()}
}

// CapsVer computes the XEP-0115 §5.1 verification string: identities,
// features and forms sorted by octets, each item followed by '<', hashed
// with SHA-1 and encoded in base64.
func CapsVer(identities []Identity, features []string, forms ...Form) string {
	var s strings.Builder
	ids := slices.Clone(identities)
	slices.SortFunc(ids, func(a, b Identity) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		if c := strings.Compare(a.Lang, b.Lang); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, id := range ids {
		s.WriteString(id.Category + "/" + id.Type + "/" + id.Lang + "/" + id.Name + "<")
	}
	fs := slices.Clone(features)
	slices.Sort(fs)
	for _, f := range fs {
		s.WriteString(f)
		s.WriteByte('<')
	}
	sorted := make([]Form, 0, len(forms))
	for _, f := range forms {
		if f.Type != "" {
			sorted = append(sorted, f)
		}
	}
	slices.SortFunc(sorted, func(a, b Form) int { return strings.Compare(a.Type, b.Type) })
	for _, f := range sorted {
		s.WriteString(f.Type)
		s.WriteByte('<')
		fields := slices.Clone(f.Fields)
		slices.SortFunc(fields, func(a, b Field) int { return strings.Compare(a.Var, b.Var) })
		for _, fl := range fields {
			if fl.Var == "FORM_TYPE" {
				continue
			}
			s.WriteString(fl.Var)
			s.WriteByte('<')
			vs := slices.Clone(fl.Values)
			slices.Sort(vs)
			for _, v := range vs {
				s.WriteString(v)
				s.WriteByte('<')
			}
		}
	}
	sum := sha1.Sum([]byte(s.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// encode returns the <query/> payload of a disco#info result.
func (info DiscoInfo) encode(node string) []byte {
	var w writer
	w.open("query", NSDiscoInfo, "node", node)
	for _, id := range info.Identities {
		w.empty("identity", "", "category", id.Category, "type", id.Type, "xml:lang", id.Lang, "name", id.Name)
	}
	for _, f := range info.Features {
		w.empty("feature", "", "var", f)
	}
	for _, f := range info.Forms {
		w.open("x", NSDataForms, "type", "result")
		w.open("field", "", "var", "FORM_TYPE", "type", "hidden")
		w.elem("value", "", f.Type)
		w.close()
		for _, fl := range f.Fields {
			w.open("field", "", "var", fl.Var)
			for _, v := range fl.Values {
				w.elem("value", "", v)
			}
			w.close()
		}
		w.close()
	}
	w.close()
	return w.bytes()
}
