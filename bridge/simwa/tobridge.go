package simwa

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"waxmpp/bridge"
)

// ToBridge converts a wire event to the bridge's event. now fills in
// missing times. In a direct chat, a message's sender defaults to the chat
// (or "me" when from_me).
func (e *Event) ToBridge(now time.Time) (bridge.Event, error) {
	at := e.Time
	if at.IsZero() {
		at = now
	}
	if e.Type == "" {
		return nil, errors.New(`event: missing "type"`)
	}
	conv, ok := toBridge[e.Type]
	if !ok {
		return nil, fmt.Errorf("event: unknown type %q; want message, edit, revoke, reaction, poll_vote, receipt, typing, presence, call, group_change, undecryptable, contact_info, chat_info, picture, alias, status, pair_code, pair_result or media_retry", e.Type)
	}
	return conv(e, at)
}

// toBridge converts each wire event type; at is the event's time.
var toBridge = map[string]func(e *Event, at time.Time) (bridge.Event, error){
	"message":       (*Event).message,
	"edit":          (*Event).edit,
	"revoke":        (*Event).revoke,
	"undecryptable": (*Event).undecryptable,
	"reaction":      (*Event).reaction,
	"poll_vote":     (*Event).pollVote,
	"receipt":       (*Event).receipt,
	"typing":        (*Event).typing,
	"presence":      (*Event).presence,
	"call":          (*Event).call,
	"group_change":  (*Event).groupChange,
	"contact_info":  (*Event).contactInfo,
	"chat_info":     (*Event).chatInfo,
	"picture":       (*Event).picture,
	"alias":         (*Event).alias,
	"status":        (*Event).status,
	"pair_code":     (*Event).pairCode,
	"pair_result":   (*Event).pairResult,
	"media_retry":   (*Event).mediaRetry,
}

// ref is the event's subject message (chat and id required).
func (e *Event) ref() (bridge.MsgRef, error) {
	if err := need("chat", e.Chat); err != nil {
		return bridge.MsgRef{}, err
	}
	if err := need("id", e.ID); err != nil {
		return bridge.MsgRef{}, err
	}
	sender := e.Sender
	if sender == "" && !e.FromMe && strings.HasSuffix(e.Chat, "@s.whatsapp.net") {
		sender = e.Chat
	}
	return bridge.MsgRef{Chat: bridge.ChatID(e.Chat), Sender: bridge.UserID(sender), ID: e.ID, FromMe: e.FromMe}, nil
}

// target is the message a reaction or vote is about.
func (e *Event) target() (bridge.MsgRef, error) {
	if e.Target == nil || e.Target.Chat == "" || e.Target.ID == "" {
		return bridge.MsgRef{}, errors.New(`"target" with chat and id is required`)
	}
	return *e.Target.msgRef(), nil
}

func (e *Event) message(at time.Time) (bridge.Event, error) {
	r, err := e.ref()
	if err != nil {
		return nil, err
	}
	kind, err := lookupEnum(msgKinds, "kind", e.Kind, "text")
	if err != nil {
		return nil, err
	}
	m := &bridge.Message{Ref: r, Time: at, PushName: e.PushName, Kind: kind, Text: e.Text,
		Mentions: users(e.Mentions), ReplyTo: e.ReplyTo.msgRef(), QuotedText: e.QuotedText,
		Forwarded: e.Forwarded, ViewOnce: e.ViewOnce, History: e.History, Retry: e.Retry}
	if e.Media != nil {
		if err := need("media.handle", e.Media.Handle); err != nil {
			return nil, err
		}
		m.Media = e.Media.media()
	}
	if e.Location != nil {
		g := bridge.Geo(*e.Location)
		m.Location = &g
	}
	for _, c := range e.Contacts {
		m.Contacts = append(m.Contacts, bridge.Contact{Name: c.Name, Numbers: nilEmpty(c.Numbers), VCard: c.VCard})
	}
	if e.Poll != nil {
		m.Poll = &bridge.PollInfo{Question: e.Poll.Question, Options: nilEmpty(e.Poll.Options), Selectable: e.Poll.Selectable}
	}
	if err := needContent(m, e.Kind); err != nil {
		return nil, err
	}
	return m, nil
}

// needContent checks that a message has what its kind shows.
func needContent(m *bridge.Message, kind string) error {
	switch {
	case m.Kind == bridge.Location || m.Kind == bridge.LiveLocation:
		if m.Location == nil {
			return errors.New(`kind location needs "location"`)
		}
	case m.Kind == bridge.ContactCard:
		if len(m.Contacts) == 0 {
			return errors.New(`kind contact_card needs "contacts"`)
		}
	case m.Kind == bridge.Poll:
		if m.Poll == nil {
			return errors.New(`kind poll needs "poll"`)
		}
	case m.Kind != bridge.Text:
		if m.Media == nil {
			return fmt.Errorf(`kind %s needs "media"`, kind)
		}
	}
	return nil
}

func (e *Event) edit(at time.Time) (bridge.Event, error) {
	r, err := e.ref()
	if err != nil {
		return nil, err
	}
	return &bridge.Edit{Ref: r, Time: at, Text: e.Text}, nil
}

func (e *Event) revoke(at time.Time) (bridge.Event, error) {
	r, err := e.ref()
	if err != nil {
		return nil, err
	}
	by := e.By
	if by == "" {
		by = string(r.Sender)
	}
	return &bridge.Revoke{Ref: r, By: bridge.UserID(by), Time: at}, nil
}

func (e *Event) undecryptable(at time.Time) (bridge.Event, error) {
	r, err := e.ref()
	if err != nil {
		return nil, err
	}
	return &bridge.Undecryptable{Ref: r, Time: at}, nil
}

func (e *Event) reaction(at time.Time) (bridge.Event, error) {
	t, err := e.target()
	if err != nil {
		return nil, err
	}
	if !e.FromMe {
		if err := need("sender", e.Sender); err != nil {
			return nil, err
		}
	}
	return &bridge.Reaction{Target: t, Sender: bridge.UserID(e.Sender), FromMe: e.FromMe, Emoji: e.Emoji, Time: at}, nil
}

func (e *Event) pollVote(at time.Time) (bridge.Event, error) {
	t, err := e.target()
	if err != nil {
		return nil, err
	}
	if err := need("sender", e.Sender); err != nil {
		return nil, err
	}
	return &bridge.PollVote{Poll: t, Voter: bridge.UserID(e.Sender), Options: nilEmpty(e.Options), Time: at}, nil
}

func (e *Event) receipt(at time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	if len(e.IDs) == 0 {
		return nil, errors.New(`"ids" is required`)
	}
	kind, err := lookupEnum(receiptKinds, "kind", e.Kind, "delivered")
	if err != nil {
		return nil, err
	}
	by := e.By
	if by == "" {
		by = e.Chat
	}
	return &bridge.Receipt{Chat: bridge.ChatID(e.Chat), By: bridge.UserID(by), IDs: e.IDs, Kind: kind, Time: at}, nil
}

func (e *Event) typing(time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	st, err := lookupEnum(typingStates, "state", e.State, "composing")
	if err != nil {
		return nil, err
	}
	sender := e.Sender
	if sender == "" {
		sender = e.Chat
	}
	return &bridge.Typing{Chat: bridge.ChatID(e.Chat), Sender: bridge.UserID(sender), State: st}, nil
}

func (e *Event) presence(time.Time) (bridge.Event, error) {
	if err := need("user", e.User); err != nil {
		return nil, err
	}
	return &bridge.Presence{User: bridge.UserID(e.User), Online: e.Online, LastSeen: e.LastSeen}, nil
}

func (e *Event) call(at time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	kind, err := lookupEnum(callKinds, "kind", e.Kind, "offered")
	if err != nil {
		return nil, err
	}
	from := e.Sender
	if from == "" {
		from = e.Chat
	}
	return &bridge.Call{Chat: bridge.ChatID(e.Chat), From: bridge.UserID(from), ID: e.ID, Video: e.Video, Kind: kind, Time: at}, nil
}

func (e *Event) groupChange(at time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	if e.Kind == "" {
		return nil, errors.New(`"kind" is required`)
	}
	kind, err := lookupEnum(groupKinds, "kind", e.Kind, "")
	if err != nil {
		return nil, err
	}
	return &bridge.GroupChange{Chat: bridge.ChatID(e.Chat), Actor: bridge.UserID(e.Sender), Kind: kind,
		Users: users(e.Users), Subject: e.Subject, Text: e.Text, Time: at}, nil
}

func (e *Event) contactInfo(time.Time) (bridge.Event, error) {
	if err := need("user", e.User); err != nil {
		return nil, err
	}
	return &bridge.ContactInfo{User: bridge.UserID(e.User), FullName: e.FullName, FirstName: e.FirstName,
		PushName: e.PushName, BusinessName: e.BusinessName}, nil
}

func (e *Event) chatInfo(time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	def := "direct"
	if strings.HasSuffix(e.Chat, "@g.us") {
		def = "group"
	}
	kind, err := lookupEnum(chatKinds, "kind", e.Kind, def)
	if err != nil {
		return nil, err
	}
	return &bridge.ChatInfo{Chat: bridge.ChatID(e.Chat), Kind: kind, Name: e.Name}, nil
}

func (e *Event) picture(time.Time) (bridge.Event, error) {
	if err := need("chat", e.Chat); err != nil {
		return nil, err
	}
	if e.Removed && e.Media != nil {
		return nil, errors.New(`a removed picture has no "media"`)
	}
	id := e.ID
	if e.Removed {
		id = ""
	}
	return &bridge.PictureChange{Chat: bridge.ChatID(e.Chat), ID: id, Removed: e.Removed}, nil
}

func (e *Event) alias(time.Time) (bridge.Event, error) {
	if err := need("lid", e.LID); err != nil {
		return nil, err
	}
	if err := need("phone", e.Phone); err != nil {
		return nil, err
	}
	return &bridge.Alias{LID: bridge.UserID(e.LID), Phone: bridge.UserID(e.Phone)}, nil
}

func (e *Event) status(time.Time) (bridge.Event, error) {
	if e.State == "" {
		return nil, errors.New(`"state" is required`)
	}
	st, err := lookupEnum(connStates, "state", e.State, "")
	if err != nil {
		return nil, err
	}
	return &bridge.Status{State: st, Reason: e.Reason, Until: e.Until, PhoneLastSeen: e.PhoneLastSeen}, nil
}

func (e *Event) pairCode(time.Time) (bridge.Event, error) {
	if e.QR == "" && e.LinkCode == "" && e.Passkey == "" {
		return nil, errors.New(`"qr" or "link_code" (or "passkey") is required`)
	}
	return &bridge.PairCode{QR: e.QR, LinkCode: e.LinkCode, Passkey: e.Passkey, Expires: e.Expires}, nil
}

func (e *Event) pairResult(time.Time) (bridge.Event, error) {
	return &bridge.PairResult{OK: e.OK, ID: bridge.UserID(e.User), Name: e.Name, Err: e.Error}, nil
}

func (m *Media) media() *bridge.Media {
	return &bridge.Media{MimeType: m.MimeType, FileName: m.FileName, Size: m.Size,
		Duration: time.Duration(m.Duration), Handle: m.Handle}
}

// mediaRetry is the phone's answer to a media retry request: with
// "media", the attachment uploaded again (its new handle); without, gone.
func (e *Event) mediaRetry(time.Time) (bridge.Event, error) {
	r, err := e.ref()
	if err != nil {
		return nil, err
	}
	ev := &bridge.MediaRetry{Ref: r, Err: e.Error}
	if e.Media != nil {
		if err := need("media.handle", e.Media.Handle); err != nil {
			return nil, err
		}
		ev.Media = e.Media.media()
	} else if ev.Err == "" {
		ev.Err = "not on the phone"
	}
	return ev, nil
}
