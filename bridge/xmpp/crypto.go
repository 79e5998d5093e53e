package xmpp

// End-to-end encryption the bot cannot read yet: it recognises encrypted
// messages so that their fallback bodies ("I sent you an OMEMO encrypted
// message but your client doesn't seem to support that…") never reach
// WhatsApp, and it keeps its account's OMEMO device list empty, so that
// clients do not encrypt to it.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Namespaces of end-to-end encryption.
const (
	NSEME      = "urn:xmpp:eme:0"                 // XEP-0380 explicit message encryption hint
	NSOMEMO    = "eu.siacs.conversations.axolotl" // XEP-0384 before 0.4 (Conversations, Gajim, Dino, profanity)
	NSOMEMO2   = "urn:xmpp:omemo:2"               // XEP-0384 0.8 and later
	NSOpenPGP  = "urn:xmpp:openpgp:0"             // XEP-0373/0374 OpenPGP for XMPP
	NSLegacyPG = "jabber:x:encrypted"             // XEP-0027 legacy OpenPGP
	NSOTR      = "urn:xmpp:otr:0"                 // XEP-0364, only named in EME hints
	NSPubSub   = "http://jabber.org/protocol/pubsub"

	// The PEP nodes of the bot's own OMEMO devices.
	nodeOMEMO  = NSOMEMO + ".devicelist"
	nodeOMEMO2 = "urn:xmpp:omemo:2:devices"
)

// schemes names the encryption of an EME hint's namespace, as the owner
// reads it.
var schemes = map[string]string{
	NSOMEMO:            "OMEMO",
	"urn:xmpp:omemo:1": "OMEMO",
	NSOMEMO2:           "OMEMO",
	NSOpenPGP:          "OpenPGP",
	NSLegacyPG:         "PGP",
	NSOTR:              "OTR",
}

// encryption interprets a message child that belongs to end-to-end
// encryption: an EME hint or an encrypted payload element.
func encryption(m *Inbound, c *node) {
	switch c.name.Space + " " + c.name.Local {
	case NSEME + " encryption":
		s := schemes[c.attr("namespace")]
		if s == "" {
			s = Clean(c.attr("name"))
		}
		if s == "" {
			s = "an encryption"
		}
		if m.Encryption == "" {
			m.Encryption = s
		}
		m.Sealed = true // the body is only a fallback
	case NSOMEMO + " encrypted", NSOMEMO2 + " encrypted":
		m.Encryption = "OMEMO"
		// Without a payload it is a key exchange (an empty OMEMO
		// message, XEP-0384 §7.4): nothing to read, nothing to tell.
		if c.child(c.name.Space, "payload") != nil {
			m.Sealed = true
		}
	case NSOpenPGP + " openpgp":
		m.Encryption, m.Sealed = "OpenPGP", true
	case NSLegacyPG + " x":
		m.Encryption, m.Sealed = "PGP", true
	}
}

// OTR (XEP-0364) travels in the body: "?OTR:" data, "?OTR?v2?" or
// "?OTRv23?" queries, "?OTR Error:". Its whitespace tag, appended to plain
// text to offer OTR, is removed: the text is readable.
const (
	otrTag     = " \t  \t\t\t\t \t \t \t  "
	otrTagV1   = " \t \t  \t "
	otrTagV2   = "  \t\t  \t "
	otrTagV3   = "  \t\t  \t\t"
	otrTagSize = 8
)

// otr settles a body that is OTR's: an OTR message is encrypted (or asks
// for encryption); a plain text with OTR's whitespace tag loses the tag.
func otr(m *Inbound) {
	if !m.HasBody {
		return
	}
	if strings.HasPrefix(m.Body, "?OTR") {
		if m.Encryption == "" {
			m.Encryption = "OTR"
		}
		m.Sealed = true
		return
	}
	if i := strings.Index(m.Body, otrTag); i >= 0 {
		j := i + len(otrTag)
		for j+otrTagSize <= len(m.Body) {
			t := m.Body[j : j+otrTagSize]
			if t != otrTagV1 && t != otrTagV2 && t != otrTagV3 {
				break
			}
			j += otrTagSize
		}
		m.Body = m.Body[:i] + m.Body[j:]
	}
}

// emptyOMEMO empties the bot's own OMEMO device lists where they name
// devices: an app the owner used to create the bot account, or a client
// logged in as the bot once, leaves its device there, and clients that see
// it encrypt to the bot, which cannot decrypt. A list that does not exist
// is left alone (clients find no device either). Both Prosody 0.12 and
// ejabberd 23.01 take a publish of the empty list to the existing node
// without publish-options, keeping the node's configuration.
//
// Clients learn of the emptied list by PEP, which the server sends only to
// the contacts whose presence (and caps) the bot's session has seen. Right
// after the login the owner's presence may still be on its way (ejabberd
// under load: the owner's profanity never heard of the empty list), so
// when the owner gets the bot's presence, the publish waits for theirs,
// a few seconds at most (the owner may be offline).
func (s *Session) emptyOMEMO(ctx context.Context, ownerSubscribed bool) error {
	var errs []error
	for _, n := range []struct{ node, elem, ns string }{
		{nodeOMEMO, "list", NSOMEMO},
		{nodeOMEMO2, "devices", NSOMEMO2},
	} {
		devices, err := s.omemoDevices(ctx, n.node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(devices) == 0 {
			continue
		}
		if ownerSubscribed {
			s.awaitOwner(ctx, ownerPresenceWait)
		}
		var w writer
		w.open("pubsub", NSPubSub)
		w.open("publish", "", "node", n.node)
		w.open("item", "", "id", "current")
		w.empty(n.elem, n.ns)
		w.close()
		w.close()
		w.close()
		if _, err := s.iq(ctx, IQ{Type: "set", Payload: Inner{w.bytes()}}); err != nil {
			errs = append(errs, fmt.Errorf("xmpp: empty %s: %w", n.node, err))
			continue
		}
		s.log.Info("emptied the bot's OMEMO device list, so that clients do not encrypt to it", "node", n.node, "devices", devices)
	}
	return errors.Join(errs...)
}

// ownerPresenceWait bounds how long emptyOMEMO waits for the owner's
// presence.
const ownerPresenceWait = 5 * time.Second

// omemoDevices returns the device ids the bot's own PEP node lists; none
// when the node does not exist.
func (s *Session) omemoDevices(ctx context.Context, node string) ([]string, error) {
	var w writer
	w.open("pubsub", NSPubSub)
	w.empty("items", "", "node", node)
	w.close()
	res, err := s.iq(ctx, IQ{Type: "get", Payload: Inner{w.bytes()}})
	if res != nil && res.Error != nil && res.Error.Condition == "item-not-found" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("xmpp: read %s: %w", node, err)
	}
	var q struct {
		Items []struct {
			Lists []struct { // <list/> (OMEMO before 0.4) or <devices/>
				Devices []struct {
					ID string `xml:"id,attr"`
				} `xml:"device"`
			} `xml:",any"`
		} `xml:"items>item"`
	}
	if err := res.Unmarshal(&q); err != nil {
		return nil, err
	}
	var ids []string
	for _, it := range q.Items {
		for _, l := range it.Lists {
			for _, d := range l.Devices {
				ids = append(ids, Clean(d.ID))
			}
		}
	}
	return ids, nil
}

// discoIdentity asks to (an owner's full JID) for its XEP-0030 identity,
// at node ("caps-node#ver", or "" for the entity itself), and returns the
// name of its client identity.
func (s *Session) discoIdentity(ctx context.Context, to, node string) (string, error) {
	var w writer
	w.empty("query", NSDiscoInfo, "node", node)
	res, err := s.iq(ctx, IQ{Type: "get", To: to, Payload: Inner{w.bytes()}})
	if err != nil {
		return "", err
	}
	var q struct {
		XMLName    xml.Name `xml:"http://jabber.org/protocol/disco#info query"`
		Identities []struct {
			Category string `xml:"category,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"identity"`
	}
	if err := res.Unmarshal(&q); err != nil {
		return "", err
	}
	name := ""
	for _, id := range q.Identities {
		if id.Category == "client" || name == "" {
			name = Clean(id.Name)
		}
		if id.Category == "client" {
			break
		}
	}
	return name, nil
}
