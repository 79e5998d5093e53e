package xmpp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"io"
	"strings"
	"sync"
	"time"

	"waxmpp/bridge"
)

// Bot adapts a Session to the core's port (bridge.XMPP): it converts the
// owner's stanzas to bridge.OwnerEvent, the core's bridge.Outgoing to
// stanzas, and serves the owner's commands as XEP-0050 ad-hoc commands.
type Bot struct {
	s *Session
	// owner carries converted owner events to the core. Backpressure: Run
	// blocks when it is full, which in turn blocks the session's reader
	// (see Session.Inbound); nothing is dropped.
	owner chan bridge.OwnerEvent
	fit   fitTracker // the owner's clients (fit.go); Run's alone
}

// stageOwnerHand is how long an owner event waits for the core to take
// it (the channel full: the core is busy).
var stageOwnerHand = bridge.NewStage("xmpp owner → core")

// NewBot returns a Bot over s. Call Run to start converting.
func NewBot(s *Session) *Bot {
	return &Bot{s: s, owner: make(chan bridge.OwnerEvent, 64), fit: fitTracker{
		names: map[string]string{}, seen: map[string]bridge.OwnerClient{}, asked: map[string]bool{}, latest: map[string]string{}, found: make(chan found),
	}}
}

// Owner delivers the owner's messages, one event per stanza.
func (b *Bot) Owner() <-chan bridge.OwnerEvent { return b.owner }

// Commands delivers the owner's XEP-0050 ad-hoc commands.
func (b *Bot) Commands() <-chan bridge.Command { return b.s.cmds }

// Run converts the session's inbound messages, and what the session
// learns of the owner's clients, until ctx ends. The disco#info requests
// of new clients run on goroutines it waits for.
func (b *Bot) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var ev bridge.OwnerEvent
		select {
		case m := <-b.s.Inbound():
			by := b.s.bare
			if m.Room != "" {
				by = m.Room // in a room, the room's archive names it
			} else {
				b.fitMessage(ctx, &wg, m.From) // a room's From names a nick
			}
			ev = OwnerEvent(m, archiveID(m, by), time.Now())
		case ev = <-b.s.notes:
		case n := <-b.s.fits:
			ev = b.fitNote(ctx, &wg, n)
		case f := <-b.fit.found:
			ev = b.fitFound(f)
		case <-ctx.Done():
			return ctx.Err()
		}
		if ev == nil {
			continue
		}
		t := bridge.StageStart()
		select {
		case b.owner <- ev:
			stageOwnerHand.Done(t)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// OwnerEvent converts a decoded message from the owner, whose archive id
// (see archiveID) is archive, into the one event it stands for. A stanza
// carries one action; when a client combines several, the first of
// displayed marker, receipt, encrypted message, retraction, correction,
// reaction, text and chat state wins. An end-to-end encrypted message is
// an OwnerEncrypted whatever its fallback body says (an OMEMO key
// exchange, which has no text, an OwnerOther). A stanza with none of them
// is an OwnerOther, so that it is acknowledged in order all the same.
func OwnerEvent(m *Inbound, archive string, now time.Time) bridge.OwnerEvent {
	meta := bridge.OwnerMeta{ID: m.OriginID, Time: now, Archive: archive, Room: m.Room}
	if m.Room == "" {
		meta.Resource = resourceOf(m.From) // in a room, From's resource is a nick
	}
	if meta.ID == "" {
		meta.ID = m.ID
	}
	if m.Delay != nil && !m.Delay.Stamp.IsZero() {
		meta.Time = m.Delay.Stamp
	}
	if m.Echo {
		return &bridge.RoomEcho{OwnerMeta: meta}
	}
	body := ""
	if m.HasBody {
		body = m.Body
		if m.Reply != nil {
			body = m.BodyWithoutFallback(NSReply)
		}
	}
	switch {
	case m.Marker != nil && m.Marker.Kind == "displayed" && m.Marker.ID != "":
		return &bridge.OwnerDisplayed{OwnerMeta: meta, Target: m.Marker.ID}
	case m.Received != "":
		return &bridge.OwnerReceived{OwnerMeta: meta, Target: m.Received}
	case m.Encryption != "" && (m.Sealed || m.HasBody):
		// Never the fallback body: the bot cannot read the message.
		return &bridge.OwnerEncrypted{OwnerMeta: meta, Scheme: m.Encryption}
	case m.Encryption != "":
		return &bridge.OwnerOther{OwnerMeta: meta} // a key exchange
	case m.Retract != nil && m.Retract.ID != "":
		return &bridge.OwnerRetraction{OwnerMeta: meta, Target: m.Retract.ID}
	case m.Retract == nil && m.Replace != "":
		return &bridge.OwnerCorrection{OwnerMeta: meta, Target: m.Replace, Body: body}
	case m.Reactions != nil:
		return &bridge.OwnerReaction{OwnerMeta: meta, Target: m.Reactions.ID, Emojis: m.Reactions.Emojis}
	}
	if m.Retract != nil {
		body = "" // a retraction's body is its fallback sentence
	}
	t := &bridge.OwnerText{OwnerMeta: meta, Body: body}
	if m.Reply != nil {
		t.ReplyTo = m.Reply.ID
	}
	switch {
	case m.OOB != nil && m.OOB.URL != "":
		t.URL = m.OOB.URL
		if b := strings.TrimSpace(t.Body); b == "" || b == strings.TrimSpace(t.URL) {
			t.File = strings.TrimSpace(t.URL) // an attachment, as Conversations, Dino and Gajim send one
		}
	case isLoneURL(t.Body):
		t.URL = strings.TrimSpace(t.Body)
		if strings.HasPrefix(t.URL, "aesgcm://") {
			t.File = t.URL // XEP-0454: an encrypted attachment
		}
	}
	if t.Body != "" || t.URL != "" {
		return t
	}
	if m.ChatState != "" {
		st := bridge.Paused
		if m.ChatState == StateComposing {
			st = bridge.Composing
		}
		return &bridge.OwnerChatState{OwnerMeta: meta, State: st}
	}
	return &bridge.OwnerOther{OwnerMeta: meta}
}

// isLoneURL: clients send files as a body that is just the URL
// (aesgcm:// for OMEMO-encrypted files, https:// otherwise).
func isLoneURL(s string) bool {
	s = strings.TrimSpace(s)
	return !strings.ContainsAny(s, " \n\t") && (strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "aesgcm://"))
}

// message converts an Outgoing to the codec's Message.
func message(o bridge.Outgoing) Message {
	m := Message{ID: o.ID, Body: o.Body, Replace: o.Replace, Retract: o.Retract, Receipt: o.Receipt, Displayed: o.Displayed, Markable: o.Markable}
	if o.ReplyTo != "" {
		m.Reply = &Reply{ID: o.ReplyTo}
		m.Quote = o.Quote
	}
	if o.React != nil {
		m.Reactions = &Reactions{ID: o.React.ID, Emojis: o.React.Emojis}
	}
	if o.Typing {
		switch o.ChatState {
		case bridge.Composing, bridge.Recording:
			m.ChatState = StateComposing
		default:
			m.ChatState = StatePaused
		}
	}
	if o.URL != "" {
		m.OOB = &OOB{URL: o.URL}
	}
	if !o.Delay.IsZero() {
		m.Delay = &Delay{Stamp: o.Delay}
	}
	if o.Room != "" {
		m.To, m.Type = o.Room, "groupchat"
	}
	return m
}

// roomMessage converts an Outgoing to a room: a message the core names by
// the bot's own id (the room's copy had not reached the core yet) is named
// by the room's id where the session has seen that copy. Corrections name
// the bot's own id.
//
// Where the room's copy has not come back yet either (the core sent a
// deletion, a reaction or a marker right after the message), the stanza
// goes now, naming the bot's id, and again once the copy tells the
// room's id (Session.fixLater). A reply is not sent twice: its fallback
// quote tells what it answers.
func (b *Bot) roomMessage(o bridge.Outgoing) Message {
	m := message(o)
	if o.Room == "" {
		return m
	}
	m.To, m.Type = o.Room, "groupchat"
	if m.Reply != nil {
		m.Reply.ID = b.s.inRoom(o.Room, m.Reply.ID)
	}
	if m.Reactions != nil {
		id := m.Reactions.ID
		if m.Reactions.ID = b.s.inRoom(o.Room, id); m.Reactions.ID == id {
			b.s.fixLater(o.Room, id, fixup{m: m, durable: true, set: func(m *Message, rid string) {
				m.Reactions = &Reactions{ID: rid, Emojis: m.Reactions.Emojis}
			}})
		}
	}
	if id := m.Retract; id != "" {
		if m.Retract = b.s.inRoom(o.Room, id); m.Retract == id {
			b.s.fixLater(o.Room, id, fixup{m: m, durable: true, set: func(m *Message, rid string) { m.Retract = rid }})
		}
	}
	if id := m.Displayed; id != "" {
		if m.Displayed = b.s.inRoom(o.Room, id); m.Displayed == id {
			b.s.fixLater(o.Room, id, fixup{m: m, set: func(m *Message, rid string) { m.Displayed = rid }})
		}
	}
	return m
}

// Send queues messages durably (bridge.XMPP).
func (b *Bot) Send(msgs ...bridge.Outgoing) ([]string, error) {
	return b.SendWith(bridge.Record{}, msgs...)
}

// SendWith queues messages and writes r in one transaction
// (bridge.RecordingXMPP).
func (b *Bot) SendWith(r bridge.Record, msgs ...bridge.Outgoing) ([]string, error) {
	ms := make([]Message, len(msgs))
	for i, o := range msgs {
		ms[i] = b.roomMessage(o)
		if ms[i].Reply != nil {
			ms[i].Reply.To = b.s.cfg.JID
			if o.Room != "" {
				ms[i].Reply.To = o.Room
			}
		}
	}
	return b.s.SendBatchWith(r, ms)
}

// SendNow sends without queueing (bridge.XMPP).
func (b *Bot) SendNow(o bridge.Outgoing) error { return b.s.SendNow(b.roomMessage(o)) }

// Handled records that the core has dealt with m (bridge.XMPP).
func (b *Bot) Handled(m bridge.OwnerEvent) {
	switch m.(type) {
	case *bridge.RoomStranger, *bridge.RoomGone:
		return // notices of the session's own, not stanzas to acknowledge
	case *bridge.OwnerClient, *bridge.OwnerRoster:
		return // not from the owner's messages: nothing to account for
	}
	if room := m.Meta().Room; room != "" {
		b.s.roomHandled(room, m.Meta().Archive)
		return
	}
	b.s.handled()
	b.s.saveRoomCursors()
}

// CreateRoom creates a room for a chat (bridge.Rooms).
func (b *Bot) CreateRoom(ctx context.Context, r bridge.Room, invite string) (bridge.Room, error) {
	return b.s.CreateRoom(ctx, r, invite)
}

// DestroyRoom destroys one of the bot's rooms (bridge.Rooms).
func (b *Bot) DestroyRoom(ctx context.Context, jid, reason string) error {
	return b.s.DestroyRoom(ctx, jid, reason)
}

// SetRoomPicture implements bridge.Rooms (muc_picture.go).
func (b *Bot) SetRoomPicture(ctx context.Context, jid string, p *bridge.Picture) error {
	return b.s.SetRoomPicture(ctx, jid, p)
}

// SetRooms says which rooms the bot is in (bridge.Rooms).
func (b *Bot) SetRooms(rooms []bridge.Room) { b.s.SetRooms(rooms) }

var _ bridge.Rooms = (*Bot)(nil)

// SetPresence sets the bot's presence (bridge.XMPP).
func (b *Bot) SetPresence(show, status string) { b.s.SetPresence(show, status) }

// OwnerClients returns the XEP-0115 caps nodes of the owner's online
// clients (one per resource that sent caps), which tell the core what
// they play.
func (b *Bot) OwnerClients() []string { return b.s.OwnerClients() }

// Upload stores a file with XEP-0363 (bridge.XMPP).
func (b *Bot) Upload(ctx context.Context, name, contentType string, size int64, r io.Reader) (string, error) {
	return b.s.Upload(ctx, name, contentType, size, r)
}

// Stats reports the session's health (bridge.XMPP).
func (b *Bot) Stats() (bridge.XMPPStats, error) {
	st, err := b.s.Stats()
	return bridge.XMPPStats{Connected: st.Connected, Queued: st.Queued, Unconfirmed: st.Unconfirmed,
		Lag: st.Lag, Dropped: st.Dropped, Reconnects: st.Reconnects, Caveat: st.Caveat()}, err
}

var _ bridge.XMPP = (*Bot)(nil)

// adhocCommand is one command offered through XEP-0050, the same as the
// chat command "/name args".
type adhocCommand struct {
	name, title string
	args        string // the argument's label; "" means none
}

// adhocCommands mirrors the owner's chat commands (the core's /help).
var adhocCommands = []adhocCommand{
	{"help", "Help", ""},
	{"chats", "List chats", "Filter (optional)"},
	{"to", "Set the current chat", "Chat"},
	{"msg", "Send to a chat once", "Chat and text"},
	{"new", "New chat with a number", "+number"},
	{"find", "Find a contact", "Name"},
	{"history", "Fetch older messages", "Chat [count]"},
	{"mute", "Mute a chat", "Chat [duration]"},
	{"unmute", "Unmute a chat", "Chat"},
	{"status", "Status", ""},
	{"pair", "Link WhatsApp", "+number for a link code (optional)"},
	{"logout", "Unlink WhatsApp", ""},
	{"invite", "Invite to XMPP", "Chat (add \"again\" to send once more), or \"text\" to see the message"},
	{"moved", "A friend moved to XMPP", "Chat and their XMPP address"},
	{"invites", "Invitations", ""},
	{"room", "Give a chat its own room", "Chat (add off to move it back)"},
	{"rooms", "List the rooms", ""},
}

// adhocConfirms are the commands whose form asks a yes-or-no question
// first (a boolean field "confirm", XEP-0004): what they do cannot be
// undone from the bot conversation. Confirmed, the core gets the command
// with the argument "yes", as if the owner had sent "/logout yes";
// otherwise nothing reaches the core.
var adhocConfirms = map[string]string{
	"logout": "Unlink waxmpp from your WhatsApp? Nothing is relayed until you pair again.",
}

// notConfirmed is the note of a confirmation form submitted unticked.
const notConfirmed = "Nothing was done."

// adhoc holds the sessions of multi-step commands (the form step).
type adhoc struct {
	mu       sync.Mutex
	sessions map[string]string // sessionid → command name
}

type commandPayload struct {
	XMLName   xml.Name `xml:"http://jabber.org/protocol/commands command"`
	Node      string   `xml:"node,attr"`
	Action    string   `xml:"action,attr"`
	SessionID string   `xml:"sessionid,attr"`
	Form      struct {
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Values []string `xml:"value"`
		} `xml:"field"`
	} `xml:"jabber:x:data x"`
}

// commandItems answers disco#items on the commands node (XEP-0050 §2.2).
func (s *Session) commandItems(iq *InIQ) IQ {
	var w writer
	w.open("query", "http://jabber.org/protocol/disco#items", "node", NSCommands)
	full := iq.To
	for _, c := range adhocCommands {
		w.empty("item", "", "jid", full, "node", c.name, "name", c.title)
	}
	w.close()
	return IQ{ID: iq.ID, To: iq.From, Type: "result", Payload: Inner{w.bytes()}}
}

// command serves one XEP-0050 request from the owner. A command that takes
// arguments first returns a one-field form, one that asks for confirmation
// (adhocConfirms) a form with that question; the submitted form (or a
// command without arguments) is handed to the core, whose text answer
// comes back as a note. It never blocks the reader: the core's answer is
// awaited on a goroutine that ends with the link or after a timeout.
func (s *Session) command(ctx context.Context, iq *InIQ) (IQ, bool) {
	var p commandPayload
	if err := iq.Unmarshal(&p); err != nil {
		return ErrorReply(iq, "bad-request"), true
	}
	var spec *adhocCommand
	for i := range adhocCommands {
		if adhocCommands[i].name == p.Node {
			spec = &adhocCommands[i]
		}
	}
	if spec == nil {
		return ErrorReply(iq, "item-not-found"), true
	}
	if p.Action == "cancel" {
		s.adhoc.mu.Lock()
		delete(s.adhoc.sessions, p.SessionID)
		s.adhoc.mu.Unlock()
		return commandResult(iq, p.Node, p.SessionID, "canceled", "", ""), true
	}
	args := ""
	question, confirm := adhocConfirms[spec.name]
	if spec.args != "" || confirm {
		s.adhoc.mu.Lock()
		started := p.SessionID != "" && s.adhoc.sessions[p.SessionID] == p.Node
		delete(s.adhoc.sessions, p.SessionID)
		if !started {
			id := newSessionID()
			if s.adhoc.sessions == nil {
				s.adhoc.sessions = map[string]string{}
			}
			if len(s.adhoc.sessions) > 100 { // abandoned forms: forget them
				clear(s.adhoc.sessions)
			}
			s.adhoc.sessions[id] = p.Node
			s.adhoc.mu.Unlock()
			if confirm {
				return confirmForm(iq, spec, id, question), true
			}
			return commandForm(iq, spec, id), true
		}
		s.adhoc.mu.Unlock()
		yes := false
		for _, f := range p.Form.Fields {
			if f.Var == "args" && len(f.Values) > 0 {
				args = strings.Join(f.Values, " ")
			}
			if f.Var == "confirm" && len(f.Values) == 1 {
				// XEP-0004 §3.3: a boolean is "1" or "true" for yes.
				v := strings.TrimSpace(f.Values[0])
				yes = v == "1" || v == "true"
			}
		}
		if confirm {
			if !yes {
				return commandResult(iq, p.Node, p.SessionID, "completed", "info", notConfirmed), true
			}
			args = "yes"
		}
	}
	if s.cmds == nil {
		return ErrorReply(iq, CondServiceUnavailable), true
	}
	go func() {
		reply := make(chan string, 1)
		text := "waxmpp is busy; try again in a moment."
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case s.cmds <- bridge.Command{Name: p.Node, Args: args, Reply: reply}:
			select {
			case text = <-reply:
			case <-t.C:
				text = "waxmpp did not answer in time."
			case <-ctx.Done():
				return
			}
		case <-t.C:
		case <-ctx.Done():
			return
		}
		b, err := EncodeIQ(commandResult(iq, p.Node, p.SessionID, "completed", "info", text))
		if err == nil {
			s.control(b)
		}
	}()
	return IQ{}, false
}

func newSessionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func commandForm(iq *InIQ, spec *adhocCommand, sid string) IQ {
	var w writer
	w.open("command", NSCommands, "node", spec.name, "sessionid", sid, "status", "executing")
	w.open("actions", "", "execute", "complete")
	w.empty("complete", "")
	w.close()
	w.open("x", NSDataForms, "type", "form")
	w.elem("title", "", spec.title)
	w.open("field", "", "var", "args", "type", "text-single", "label", spec.args)
	w.close()
	w.close()
	w.close()
	return IQ{ID: iq.ID, To: iq.From, Type: "result", Payload: Inner{w.bytes()}}
}

// confirmForm asks the owner to confirm a command: one boolean field,
// unticked, which must be ticked for the command to run.
func confirmForm(iq *InIQ, spec *adhocCommand, sid, question string) IQ {
	var w writer
	w.open("command", NSCommands, "node", spec.name, "sessionid", sid, "status", "executing")
	w.open("actions", "", "execute", "complete")
	w.empty("complete", "")
	w.close()
	w.open("x", NSDataForms, "type", "form")
	w.elem("title", "", spec.title)
	w.elem("instructions", "", question)
	w.open("field", "", "var", "confirm", "type", "boolean", "label", "Yes, "+strings.ToLower(spec.title))
	w.empty("required", "")
	w.elem("value", "", "0")
	w.close()
	w.close()
	w.close()
	return IQ{ID: iq.ID, To: iq.From, Type: "result", Payload: Inner{w.bytes()}}
}

func commandResult(iq *InIQ, node, sid, status, noteType, text string) IQ {
	var w writer
	w.open("command", NSCommands, "node", node, "sessionid", sid, "status", status)
	if text != "" {
		w.open("note", "", "type", noteType)
		w.text(text)
		w.close()
	}
	w.close()
	return IQ{ID: iq.ID, To: iq.From, Type: "result", Payload: Inner{w.bytes()}}
}
