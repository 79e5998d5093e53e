package xmpp

// Interpreting a decoded tree: messages (with their XEP extensions),
// presences and IQs.

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// parseMessage interprets a <message/>. outer is false for a message
// forwarded inside another (archive result, carbon), which is never
// unwrapped again.
func parseMessage(n *node, outer bool) *Inbound {
	if outer {
		if im := unwrap(n); im != nil {
			return im
		}
	}
	m := &Inbound{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: Clean(n.attr("type")),
	}
	var p msgParts
	for c := range n.children() {
		p.child(m, c, n.name.Space) // jabber:client, or "" outside a stream
	}
	p.finish(m)
	return m
}

// msgParts is what parsing a message's children needs beyond the Inbound
// itself: the body's language and the retraction forms seen.
type msgParts struct {
	bodyLang           string
	retract1, retract0 string
}

// child interprets one child element of a message in the stream's
// namespace ns.
func (p *msgParts) child(m *Inbound, c *node, ns string) {
	switch c.name.Space {
	case ns:
		switch c.name.Local {
		case "body":
			// Prefer a body without xml:lang; otherwise the first.
			if !m.HasBody || (p.bodyLang != "" && c.lang() == "") {
				m.Body, m.HasBody, p.bodyLang = Clean(c.text()), true, c.lang()
			}
		case "error":
			m.Error = parseError(c)
		}
	case NSSID:
		switch c.name.Local {
		case "origin-id":
			m.OriginID = Clean(c.attr("id"))
		case "stanza-id":
			m.StanzaIDs = append(m.StanzaIDs, StanzaID{ID: Clean(c.attr("id")), By: Clean(c.attr("by"))})
		}
	case NSReply, NSFallback, NSCorrect, NSRetract, NSFasten, NSReactions:
		p.reference(m, c)
	case NSReceipts, NSMarkers, NSChatStates:
		signal(m, c)
	case NSMUCUser:
		if c.name.Local == "x" {
			m.MUC = parseMUCUser(c)
		}
	case NSOOB:
		if c.name.Local == "x" {
			o := &OOB{}
			if u := c.child(NSOOB, "url"); u != nil {
				o.URL = Clean(u.text())
			}
			if d := c.child(NSOOB, "desc"); d != nil {
				o.Desc = Clean(d.text())
			}
			m.OOB = o
		}
	case NSDelay:
		if d := parseDelay(c, true); d != nil && c.name.Local == "delay" {
			m.Delay = d
		}
	case NSEME, NSOMEMO, NSOMEMO2, NSOpenPGP, NSLegacyPG:
		encryption(m, c)
	}
}

// reference interprets the children that point at another message:
// reply, fallback, correction, retraction and reactions.
func (p *msgParts) reference(m *Inbound, c *node) {
	switch c.name.Space + " " + c.name.Local {
	case NSReply + " reply":
		m.Reply = &Reply{To: Clean(c.attr("to")), ID: Clean(c.attr("id"))}
	case NSFallback + " fallback":
		if f, ok := parseFallback(c); ok {
			m.Fallbacks = append(m.Fallbacks, f)
		}
	case NSCorrect + " replace":
		m.Replace = Clean(c.attr("id"))
	case NSRetract + " retract":
		p.retract1 = Clean(c.attr("id"))
	case NSFasten + " apply-to":
		if c.child(NSRetract0, "retract") != nil {
			p.retract0 = Clean(c.attr("id"))
		}
	case NSReactions + " reactions":
		r := &Reactions{ID: Clean(c.attr("id")), Emojis: []string{}}
		for e := range c.children() {
			if e.name.Space == NSReactions && e.name.Local == "reaction" {
				r.Emojis = append(r.Emojis, Clean(e.text()))
			}
		}
		m.Reactions = r
	}
}

// signal interprets receipts (XEP-0184), chat markers (XEP-0333) and chat
// states (XEP-0085).
func signal(m *Inbound, c *node) {
	switch c.name.Space {
	case NSReceipts:
		switch c.name.Local {
		case "received":
			m.Received = Clean(c.attr("id"))
		}
	case NSMarkers:
		switch c.name.Local {
		case "markable":
			m.Markable = true
		case "received", "displayed", "acknowledged":
			m.Marker = &Marker{Kind: c.name.Local, ID: Clean(c.attr("id"))}
		}
	case NSChatStates:
		if validChatState(c.name.Local) {
			m.ChatState = c.name.Local
		}
	}
}

// finish settles the retraction: XEP-0424 v1 wins over v0 (fastening),
// which wins over a correction to a single space (Cheogram's form, which
// is then no correction).
func (p *msgParts) finish(m *Inbound) {
	otr(m)
	switch {
	case p.retract1 != "":
		m.Retract = &Retraction{ID: p.retract1, Form: RetractV1}
	case p.retract0 != "":
		m.Retract = &Retraction{ID: p.retract0, Form: RetractFasten}
	case m.Replace != "" && m.HasBody && m.Body == " ":
		m.Retract = &Retraction{ID: m.Replace, Form: RetractCorrection}
		m.Replace = ""
	}
}

// parseDelay reads an XEP-0203 <delay/>; nil if its stamp is not a time.
func parseDelay(c *node, reason bool) *Delay {
	t, err := time.Parse(time.RFC3339Nano, c.attr("stamp"))
	if err != nil {
		return nil
	}
	d := &Delay{Stamp: t.UTC(), From: Clean(c.attr("from"))}
	if reason {
		d.Reason = Clean(c.text())
	}
	return d
}

// unwrap returns the message forwarded inside n — an archive result
// (XEP-0313) or a carbon (XEP-0280), whichever comes first — or nil.
func unwrap(n *node) *Inbound {
	from := Clean(n.attr("from"))
	for c := range n.children() {
		var fw *node
		switch {
		case c.name.Space == NSMAM && c.name.Local == "result",
			c.name.Space == NSCarbons && (c.name.Local == "sent" || c.name.Local == "received"):
			fw = c.child(NSForward, "forwarded")
		}
		if fw == nil {
			continue
		}
		for inner := range fw.children() {
			if inner.name.Local != "message" || (inner.name.Space != NSClient && inner.name.Space != n.name.Space) {
				continue
			}
			im := parseMessage(inner, false)
			if c.name.Space == NSCarbons {
				im.Carbon = Carbon(c.name.Local)
				im.CarbonFrom = from
				return im
			}
			// An archived message: what the owner sent, with the
			// archive's id and the original time.
			im.Archived = &Archived{QueryID: Clean(c.attr("queryid")), ID: Clean(c.attr("id")), From: from}
			if im.Delay == nil {
				if d := fw.child(NSDelay, "delay"); d != nil {
					im.Delay = parseDelay(d, false)
				}
			}
			return im
		}
	}
	return nil
}

func parseFallback(c *node) (Fallback, bool) {
	f := Fallback{For: Clean(c.attr("for"))}
	for b := range c.children() {
		if b.name.Space != NSFallback || b.name.Local != "body" {
			continue // <subject/> ranges do not concern the body
		}
		s, err1 := strconv.Atoi(b.attr("start"))
		e, err2 := strconv.Atoi(b.attr("end"))
		if err1 != nil || err2 != nil || s < 0 || e < s {
			// A broken range must not make the whole body a fallback.
			return Fallback{}, false
		}
		f.Ranges = append(f.Ranges, Range{Start: s, End: e})
	}
	if len(f.Ranges) == 0 && hasChildren(c) {
		return Fallback{}, false // only <subject/> ranges
	}
	return f, true
}

func parseError(c *node) *StanzaError {
	e := &StanzaError{Type: Clean(c.attr("type"))}
	for k := range c.children() {
		if k.name.Space != NSStanzas {
			continue
		}
		if k.name.Local == "text" {
			e.Text = Clean(k.text())
		} else if e.Condition == "" {
			e.Condition = k.name.Local
		}
	}
	return e
}

func parsePresence(n *node) *InPresence {
	p := &InPresence{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: Clean(n.attr("type")),
	}
	ns := n.name.Space
	for c := range n.children() {
		switch {
		case c.name.Space == ns && c.name.Local == "show":
			p.Show = Clean(strings.TrimSpace(c.text()))
		case c.name.Space == ns && c.name.Local == "status":
			if p.Status == "" || c.lang() == "" {
				p.Status = Clean(c.text())
			}
		case c.name.Space == ns && c.name.Local == "priority":
			if v, err := strconv.Atoi(strings.TrimSpace(c.text())); err == nil && v >= -128 && v <= 127 {
				p.Priority = v
			}
		case c.name.Space == ns && c.name.Local == "error":
			p.Error = parseError(c)
		case c.name.Space == NSMUCUser && c.name.Local == "x":
			p.MUC = parseMUCUser(c)
		case c.name.Space == NSCaps && c.name.Local == "c":
			p.Caps = &Caps{Hash: Clean(c.attr("hash")), Node: Clean(c.attr("node")), Ver: Clean(c.attr("ver"))}
		}
	}
	return p
}

func parseIQ(n *node) (*InIQ, error) {
	iq := &InIQ{
		ID:   Clean(n.attr("id")),
		From: Clean(n.attr("from")),
		To:   Clean(n.attr("to")),
		Type: n.attr("type"),
	}
	bad := func(reason string) (*InIQ, error) {
		return nil, &DecodeError{Name: n.name, ID: iq.ID, Reason: reason}
	}
	switch iq.Type {
	case "get", "set", "result", "error":
	default:
		return bad("bad type " + strconv.Quote(Clean(iq.Type)))
	}
	if iq.ID == "" {
		return bad("no id")
	}
	for c := range n.children() {
		if c.name.Space == n.name.Space && c.name.Local == "error" {
			if iq.Error == nil {
				iq.Error = parseError(c)
			}
			continue
		}
		if iq.PayloadXML == nil {
			iq.Payload = c.name
			var w writer
			writeNode(&w, c, n.name.Space)
			iq.PayloadXML = bytes.Clone(w.bytes())
		}
	}
	if (iq.Type == "get" || iq.Type == "set") && iq.PayloadXML == nil {
		return bad(iq.Type + " without payload")
	}
	return iq, nil
}

// writeNode re-encodes n; parentNS is the default namespace in scope.
func writeNode(w *writer, n *node, parentNS string) {
	ns := ""
	if n.name.Space != parentNS {
		ns = n.name.Space
	}
	var attrs []string
	prefixes := 0
	var decls []string
	for _, a := range n.attrs {
		name := a.Name.Local
		switch a.Name.Space {
		case "":
		case xmlNamespace:
			name = "xml:" + a.Name.Local
		default:
			prefixes++
			p := "ns" + strconv.Itoa(prefixes)
			decls = append(decls, "xmlns:"+p, a.Name.Space)
			name = p + ":" + a.Name.Local
		}
		attrs = append(attrs, name, a.Value)
	}
	if n.name.Space == "" && parentNS != "" {
		// A child in no namespace under a namespaced parent.
		decls = append(decls, "xmlns", "")
	}
	w.start(n.name.Local, ns, true, append(decls, attrs...))
	for _, p := range n.parts {
		if p.el != nil {
			writeNode(w, p.el, n.name.Space)
		} else {
			w.text(p.text)
		}
	}
	w.close()
}
