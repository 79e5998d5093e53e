package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

// buildText is the message for SendText: a plain conversation message, or
// an extended text when it replies or mentions.
func buildText(text string, opts bridge.SendOptions, self types.JID) *waE2E.Message {
	if opts.ReplyTo == nil && len(opts.Mentions) == 0 {
		return &waE2E.Message{Conversation: proto.String(text)}
	}
	return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: contextInfo(opts, self)}}
}

// contextInfo carries a reply and mentions; nil without either.
func contextInfo(opts bridge.SendOptions, self types.JID) *waE2E.ContextInfo {
	if opts.ReplyTo == nil && len(opts.Mentions) == 0 {
		return nil
	}
	ci := &waE2E.ContextInfo{}
	if r := opts.ReplyTo; r != nil {
		ci.StanzaID = proto.String(r.ID)
		sender := string(r.Sender)
		if r.FromMe && !self.IsEmpty() {
			sender = self.String()
		}
		if sender != "" {
			ci.Participant = proto.String(sender)
		}
		ci.QuotedMessage = &waE2E.Message{Conversation: proto.String(opts.QuotedText)}
	}
	for _, m := range opts.Mentions {
		ci.MentionedJID = append(ci.MentionedJID, string(m))
	}
	return ci
}

func buildLocation(g bridge.Geo) *waE2E.Message {
	m := &waE2E.LocationMessage{DegreesLatitude: proto.Float64(g.Lat), DegreesLongitude: proto.Float64(g.Lon)}
	if g.Name != "" {
		m.Name = proto.String(g.Name)
	}
	if g.Address != "" {
		m.Address = proto.String(g.Address)
	}
	return &waE2E.Message{LocationMessage: m}
}

func parseJID(id string) (types.JID, error) {
	j, err := types.ParseJID(id)
	if err != nil || j.IsEmpty() {
		return types.EmptyJID, fmt.Errorf("whatsapp: bad id %q", id)
	}
	return j, nil
}

// connected returns the client if a device is linked.
func (a *Adapter) linked() (client, types.JID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.id.IsEmpty() {
		return nil, types.EmptyJID, bridge.ErrNotPaired
	}
	return a.cli, a.id, nil
}

// stageSend times whatsmeow's SendMessage (bridge.NewStage).
var stageSend = bridge.NewStage("whatsapp send")

func (a *Adapter) send(ctx context.Context, chat bridge.ChatID, m *waE2E.Message, id string) (bridge.MsgRef, time.Time, error) {
	c, self, err := a.linked()
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, err
	}
	to, err := parseJID(string(chat))
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, err
	}
	var extra []whatsmeow.SendRequestExtra
	if id != "" {
		extra = append(extra, whatsmeow.SendRequestExtra{ID: types.MessageID(id)})
	}
	t := bridge.StageStart()
	resp, err := c.SendMessage(ctx, to, m, extra...)
	stageSend.Done(t)
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, fmt.Errorf("whatsapp: send to %s: %w", chat, err)
	}
	return bridge.MsgRef{Chat: chat, Sender: userID(self), ID: resp.ID, FromMe: true}, resp.Timestamp, nil
}

// SendText implements bridge.WhatsApp.
func (a *Adapter) SendText(ctx context.Context, chat bridge.ChatID, text string, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	return a.send(ctx, chat, buildText(text, opts, a.self()), opts.ID)
}

// SendLocation implements bridge.WhatsApp.
func (a *Adapter) SendLocation(ctx context.Context, chat bridge.ChatID, g bridge.Geo, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	return a.send(ctx, chat, buildLocation(g), opts.ID)
}

// Edit implements bridge.WhatsApp. WhatsApp accepts an edit for 20 minutes
// after sending and silently ignores a later one (whatsmeow reports no
// error): the core keeps the window and asks only within it.
func (a *Adapter) Edit(ctx context.Context, ref bridge.MsgRef, text string) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	chat, err := parseJID(string(ref.Chat))
	if err != nil {
		return err
	}
	_, _, err = a.send(ctx, ref.Chat, c.BuildEdit(chat, ref.ID, &waE2E.Message{Conversation: proto.String(text)}), "")
	return err
}

// keySender is the sender whatsmeow's Build* helpers want: empty for the
// owner's own messages.
func keySender(ref bridge.MsgRef) types.JID {
	if ref.FromMe || ref.Sender == "" {
		return types.EmptyJID
	}
	j, _ := types.ParseJID(string(ref.Sender))
	return j
}

// Revoke implements bridge.WhatsApp.
func (a *Adapter) Revoke(ctx context.Context, ref bridge.MsgRef) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	chat, err := parseJID(string(ref.Chat))
	if err != nil {
		return err
	}
	_, _, err = a.send(ctx, ref.Chat, c.BuildRevoke(chat, keySender(ref), ref.ID), "")
	return err
}

// React implements bridge.WhatsApp.
func (a *Adapter) React(ctx context.Context, target bridge.MsgRef, emoji string) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	chat, err := parseJID(string(target.Chat))
	if err != nil {
		return err
	}
	_, _, err = a.send(ctx, target.Chat, c.BuildReaction(chat, keySender(target), target.ID, emoji), "")
	return err
}

// MarkRead implements bridge.WhatsApp.
func (a *Adapter) MarkRead(ctx context.Context, chat bridge.ChatID, sender bridge.UserID, ids []string, at time.Time) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	cj, err := parseJID(string(chat))
	if err != nil {
		return err
	}
	var sj types.JID
	if cj.Server == types.GroupServer || cj.Server == types.BroadcastServer {
		if sj, err = parseJID(string(sender)); err != nil {
			return err
		}
	}
	if err := c.MarkRead(ctx, ids, at, cj, sj); err != nil {
		return fmt.Errorf("whatsapp: mark read: %w", err)
	}
	return nil
}

// SetTyping implements bridge.WhatsApp.
func (a *Adapter) SetTyping(ctx context.Context, chat bridge.ChatID, state bridge.TypingState) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	cj, err := parseJID(string(chat))
	if err != nil {
		return err
	}
	st, media := types.ChatPresencePaused, types.ChatPresenceMediaText
	switch state {
	case bridge.Composing:
		st = types.ChatPresenceComposing
	case bridge.Recording:
		st, media = types.ChatPresenceComposing, types.ChatPresenceMediaAudio
	}
	return c.SendChatPresence(ctx, cj, st, media)
}

// SetOnline implements bridge.WhatsApp.
func (a *Adapter) SetOnline(ctx context.Context, online bool) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	p := types.PresenceUnavailable
	if online {
		p = types.PresenceAvailable
	}
	return c.SendPresence(ctx, p)
}

// Lookup implements bridge.WhatsApp.
func (a *Adapter) Lookup(ctx context.Context, phone string) (bridge.UserID, bool, error) {
	c, _, err := a.linked()
	if err != nil {
		return "", false, err
	}
	num, err := NormalizePhone(phone)
	if err != nil {
		return "", false, err
	}
	res, err := c.IsOnWhatsApp(ctx, []string{"+" + num})
	if err != nil {
		return "", false, fmt.Errorf("whatsapp: lookup: %w", err)
	}
	for _, r := range res {
		if r.IsIn {
			return userID(r.JID), true, nil
		}
	}
	return "", false, nil
}

// RequestHistory implements bridge.WhatsApp: it asks the phone (a peer
// message); the answer arrives later as an on-demand history sync, relayed
// as Messages with History set. The phone must be online.
func (a *Adapter) RequestHistory(ctx context.Context, before bridge.HistoryAnchor, n int) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	chat := before.Ref.Chat
	cj, err := parseJID(string(chat))
	if err != nil {
		return err
	}
	info := &types.MessageInfo{MessageSource: types.MessageSource{Chat: cj, IsFromMe: before.Ref.FromMe}, ID: before.Ref.ID, Timestamp: before.Time}
	if info.ID == "" {
		return fmt.Errorf("whatsapp: history of %s: %w (no anchor message)", chat, bridge.ErrNotFound)
	}
	if n <= 0 || n > 500 {
		n = 50
	}
	if _, err := c.SendPeerMessage(ctx, c.BuildHistorySyncRequest(info, n)); err != nil {
		return fmt.Errorf("whatsapp: history request: %w", err)
	}
	return nil
}

// tempFile creates a private temporary file next to the state file.
func (a *Adapter) tempFile(kind string) (*os.File, error) {
	return os.CreateTemp(a.tempDir, ".waxmpp-"+kind+"-*")
}

// Logout implements bridge.WhatsApp.
func (a *Adapter) Logout(ctx context.Context) error {
	c, _, err := a.linked()
	if err != nil {
		return err
	}
	if err := c.Logout(ctx); err != nil {
		return fmt.Errorf("whatsapp: logout: %w", err)
	}
	a.loggedOut(c, &bridge.Status{State: bridge.LoggedOut, Reason: "unlinked with /logout"})
	return nil
}

// ErrBadNumber is a phone number that cannot be an E.164 number.
var ErrBadNumber = errors.New("whatsapp: a phone number is written in international form: + then country code and number, e.g. +491701234567")

// NormalizePhone returns the digits of an E.164 number ('+' or "00"
// optional; spaces, dots, dashes and parentheses allowed).
func NormalizePhone(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	s = strings.TrimPrefix(s, "00")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return "", ErrBadNumber
		}
	}
	d := b.String()
	// E.164: at most 15 digits; the shortest numbers with country code
	// have 8. A leading 0 is a national number.
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", ErrBadNumber
	}
	return d, nil
}
