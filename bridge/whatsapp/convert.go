package whatsapp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"waxmpp/bridge"
)

// decrypter is the part of whatsmeow that opens message-secret payloads:
// poll votes, encrypted reactions and secret-encrypted edits. They are
// encrypted with the secret of the message they refer to, which whatsmeow
// keeps in its device store.
type decrypter interface {
	DecryptPollVote(ctx context.Context, vote *events.Message) (*waE2E.PollVoteMessage, error)
	DecryptReaction(ctx context.Context, reaction *events.Message) (*waE2E.ReactionMessage, error)
	DecryptSecretEncryptedMessage(ctx context.Context, evt *events.Message) (*waE2E.Message, error)
}

// polls remembers the options of polls seen, because a vote carries only
// the SHA-256 hashes of the option texts chosen.
type polls interface {
	putPoll(chat, id string, options []string)
	pollOptions(chat, id string) []string
}

// converter turns whatsmeow events into domain events. It holds no
// connection: everything it needs beyond the event (the owner's own JID,
// decryption of message-secret payloads, poll options) comes through its
// fields, so it is tested with real whatsmeow values and fakes.
type converter struct {
	self    func() types.JID // the owner's phone-number JID (non-AD); may return empty
	selfLID func() types.JID // the owner's LID; may return empty
	dec     decrypter
	polls   polls
	log     *slog.Logger

	mu       sync.Mutex
	accepted map[string]bool // call ids answered (on another device); bounded
}

// isSelf reports whether j is the owner, by phone number or LID.
func (c *converter) isSelf(j types.JID) bool {
	if j.IsEmpty() {
		return false
	}
	if s := c.self(); !s.IsEmpty() && s.User == j.User && j.Server == types.DefaultUserServer {
		return true
	}
	if c.selfLID != nil {
		if l := c.selfLID(); !l.IsEmpty() && l.User == j.User && j.Server == types.HiddenUserServer {
			return true
		}
	}
	return false
}

// convert maps one whatsmeow event to zero or more domain events. It never
// blocks on the network except through dec (which reads the device store).
// Events of no interest to the owner map to nothing.
func (c *converter) convert(ctx context.Context, evt any) []bridge.Event {
	switch e := evt.(type) {
	case *events.Message:
		return c.message(ctx, e, false)
	case *events.UndecryptableMessage:
		if e.DecryptFailMode == events.DecryptFailHide {
			// Reactions, poll votes and the like: WhatsApp itself shows nothing.
			return nil
		}
		out := c.aliases(e.Info.MessageSource)
		if e.IsUnavailable && e.UnavailableType == events.UnavailableTypeViewOnce {
			// WhatsApp keeps view-once messages from companion devices:
			// only the phone can open them, and none will follow.
			return append(out, &bridge.Message{Ref: c.ref(e.Info), Time: e.Info.Timestamp, PushName: e.Info.PushName,
				Kind: bridge.Text, ViewOnce: true})
		}
		// Otherwise whatsmeow has asked the sender (or, for an
		// unavailable one, the phone) to send it again.
		return append(out, &bridge.Undecryptable{Ref: c.ref(e.Info), Time: e.Info.Timestamp})
	case *events.Receipt:
		return c.receipt(e)
	case *events.ChatPresence:
		st := bridge.Paused
		if e.State == types.ChatPresenceComposing {
			st = bridge.Composing
			if e.Media == types.ChatPresenceMediaAudio {
				st = bridge.Recording
			}
		}
		return []bridge.Event{&bridge.Typing{Chat: chatID(e.Chat), Sender: userID(e.Sender), State: st}}
	case *events.Presence:
		return []bridge.Event{&bridge.Presence{User: userID(e.From), Online: !e.Unavailable, LastSeen: e.LastSeen}}
	case *events.PushName:
		out := []bridge.Event{&bridge.ContactInfo{User: userID(e.JID), PushName: e.NewPushName}}
		return append(out, alias(e.JID, e.JIDAlt)...)
	case *events.BusinessName:
		return []bridge.Event{&bridge.ContactInfo{User: userID(e.JID), BusinessName: e.NewBusinessName}}
	case *events.Contact:
		a := e.Action
		if a == nil {
			return nil
		}
		out := []bridge.Event{&bridge.ContactInfo{User: userID(e.JID), FullName: a.GetFullName(), FirstName: a.GetFirstName()}}
		// Newer app-state contact actions carry the other identity.
		if lid := a.GetLidJID(); lid != "" {
			if j, err := types.ParseJID(lid); err == nil {
				out = append(out, alias(e.JID, j)...)
			}
		}
		if pn := a.GetPnJID(); pn != "" {
			if j, err := types.ParseJID(pn); err == nil {
				out = append(out, alias(e.JID, j)...)
			}
		}
		return out
	case *events.Picture:
		if ev := pictureChange(e); ev != nil {
			return []bridge.Event{ev}
		}
		return nil
	case *events.Mute, *events.Archive, *events.Pin:
		// The phone's own chat settings; the bridge has its own /mute.
		return nil
	case *events.GroupInfo:
		return c.groupInfo(e)
	case *events.JoinedGroup:
		return c.joinedGroup(e)
	case *events.CallOffer:
		return []bridge.Event{c.call(e.BasicCallMeta, bridge.CallOffered, hasChild(e.Data, "video"))}
	case *events.CallOfferNotice:
		return []bridge.Event{c.call(e.BasicCallMeta, bridge.CallOffered, e.Media == "video")}
	case *events.CallAccept:
		// Answered on the phone or another device.
		c.mu.Lock()
		if c.accepted == nil || len(c.accepted) > 100 {
			c.accepted = map[string]bool{}
		}
		c.accepted[e.CallID] = true
		c.mu.Unlock()
		return nil
	case *events.CallTerminate:
		c.mu.Lock()
		answered := c.accepted[e.CallID]
		delete(c.accepted, e.CallID)
		c.mu.Unlock()
		// A call to the owner that ends unanswered was missed; the owner's
		// own calls and answered calls just ended.
		k := bridge.CallEnded
		if !answered && !c.isSelf(e.CallCreator) && !c.isSelf(e.CallCreatorAlt) {
			k = bridge.CallMissed
		}
		return []bridge.Event{c.call(e.BasicCallMeta, k, false)}
	case *events.CallReject:
		return []bridge.Event{c.call(e.BasicCallMeta, bridge.CallRejected, false)}
	}
	return nil
}

// message converts a decrypted message; history marks messages from a
// history sync.
func (c *converter) message(ctx context.Context, e *events.Message, history bool) []bridge.Event {
	m := unwrap(e.Message)
	if m == nil && e.RawMessage != nil {
		m = unwrap(e.RawMessage)
	}
	if m == nil {
		return nil
	}
	info := e.Info
	out := c.aliases(info.MessageSource)
	if ev, ok := c.action(ctx, e, m); ok {
		if ev != nil {
			out = append(out, ev)
		}
		return out
	}
	msg := &bridge.Message{
		Ref:      c.ref(info),
		Time:     info.Timestamp,
		PushName: info.PushName,
		ViewOnce: e.IsViewOnce || isViewOnce(m),
		History:  history,
		Retry:    e.RetryCount > 0 || e.UnavailableRequestID != "",
	}
	ci, ok := textContent(msg, m)
	if !ok {
		ci, ok = mediaContent(msg, m)
	}
	if !ok {
		ci, ok = otherContent(msg, m)
	}
	if !ok {
		// Status updates of other kinds, keep-in-chat, pins, buttons and
		// the like: nothing the owner can act on.
		return out
	}
	if msg.Poll != nil {
		c.polls.putPoll(string(msg.Ref.Chat), msg.Ref.ID, msg.Poll.Options)
	}
	c.context(msg, info, ci)
	return append(out, msg)
}

// action converts a message that acts on another one (revoke, edit,
// reaction, poll vote); ok is false for a message of its own. ev is nil
// when the action cannot be shown (a payload that does not decrypt, a
// protocol message the domain has no event for).
func (c *converter) action(ctx context.Context, e *events.Message, m *waE2E.Message) (ev bridge.Event, ok bool) {
	info := e.Info
	switch {
	case m.GetProtocolMessage() != nil:
		return c.protocol(info, m.GetProtocolMessage()), true
	case m.GetReactionMessage() != nil:
		return c.reaction(info, m.GetReactionMessage()), true
	case m.GetEncReactionMessage() != nil:
		r, err := c.dec.DecryptReaction(ctx, e)
		if err != nil {
			c.log.Debug("cannot decrypt reaction", "id", info.ID, "err", err)
			return nil, true
		}
		// The sender's whatsmeow (EncryptReaction) and WhatsApp's clients
		// leave the key out of the encrypted part: the target is the
		// encrypted message's own target key.
		r.Key = m.GetEncReactionMessage().GetTargetMessageKey()
		return c.reaction(info, r), true
	case m.GetPollUpdateMessage() != nil:
		return c.pollVote(ctx, e, m.GetPollUpdateMessage()), true
	case m.GetSecretEncryptedMessage() != nil:
		return c.secretEdit(ctx, e, m.GetSecretEncryptedMessage()), true
	}
	return nil, false
}

// protocol converts a revoke or an edit; nil for other protocol messages
// (ephemeral settings, history sync notifications, key shares: the domain
// has no event for them; whatsmeow handles what it must).
func (c *converter) protocol(info types.MessageInfo, p *waE2E.ProtocolMessage) bridge.Event {
	switch p.GetType() {
	case waE2E.ProtocolMessage_REVOKE:
		return &bridge.Revoke{Ref: c.keyRef(info, p.GetKey()), By: userID(info.Sender), Time: info.Timestamp}
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		return &bridge.Edit{Ref: c.keyRef(info, p.GetKey()), Time: info.Timestamp, Text: text(p.GetEditedMessage())}
	}
	return nil
}

// pollVote decrypts a vote (encrypted with the poll's message secret) and
// names the options chosen.
func (c *converter) pollVote(ctx context.Context, e *events.Message, pu *waE2E.PollUpdateMessage) bridge.Event {
	info := e.Info
	v, err := c.dec.DecryptPollVote(ctx, e)
	if err != nil {
		c.log.Debug("cannot decrypt poll vote", "id", info.ID, "err", err)
		return nil
	}
	target := c.keyRef(info, pu.GetPollCreationMessageKey())
	var chosen []string
	opts := c.polls.pollOptions(string(target.Chat), target.ID)
	for _, h := range v.GetSelectedOptions() {
		chosen = append(chosen, optionFor(opts, h))
	}
	return &bridge.PollVote{Poll: target, Voter: userID(info.Sender), Options: chosen, Time: info.Timestamp}
}

// secretEdit decrypts an edit encrypted with the edited message's secret;
// nil for other secret-encrypted kinds (event and poll edits).
func (c *converter) secretEdit(ctx context.Context, e *events.Message, se *waE2E.SecretEncryptedMessage) bridge.Event {
	info := e.Info
	if se.GetSecretEncType() != waE2E.SecretEncryptedMessage_MESSAGE_EDIT {
		return nil
	}
	dm, err := c.dec.DecryptSecretEncryptedMessage(ctx, e)
	if err != nil {
		c.log.Debug("cannot decrypt edit", "id", info.ID, "err", err)
		return nil
	}
	dm = unwrap(dm)
	if p := dm.GetProtocolMessage(); p != nil && p.GetEditedMessage() != nil {
		dm = p.GetEditedMessage()
	}
	return &bridge.Edit{Ref: c.keyRef(info, se.GetTargetMessageKey()), Time: info.Timestamp, Text: text(dm)}
}

// mediaContent fills msg from an attachment (image, video, audio,
// document, sticker) and returns its context; ok is false when m has none.
func mediaContent(msg *bridge.Message, m *waE2E.Message) (ci *waE2E.ContextInfo, ok bool) {
	switch {
	case m.ImageMessage != nil:
		x := m.GetImageMessage()
		msg.Kind, msg.Text, ci = bridge.Image, x.GetCaption(), x.GetContextInfo()
		msg.Media = media(x, "image", x.GetMimetype(), "", x.GetFileLength(), 0)
		msg.ViewOnce = msg.ViewOnce || x.GetViewOnce()
	case m.VideoMessage != nil || m.PtvMessage != nil:
		x := m.GetVideoMessage()
		if x == nil {
			x = m.GetPtvMessage()
		}
		msg.Kind, msg.Text, ci = bridge.Video, x.GetCaption(), x.GetContextInfo()
		msg.Media = media(x, "video", x.GetMimetype(), "", x.GetFileLength(), x.GetSeconds())
		msg.ViewOnce = msg.ViewOnce || x.GetViewOnce()
	case m.AudioMessage != nil:
		x := m.GetAudioMessage()
		msg.Kind, ci = bridge.Audio, x.GetContextInfo()
		if x.GetPTT() {
			msg.Kind = bridge.Voice
		}
		msg.Media = media(x, "audio", x.GetMimetype(), "", x.GetFileLength(), x.GetSeconds())
		msg.ViewOnce = msg.ViewOnce || x.GetViewOnce()
	case m.DocumentMessage != nil:
		x := m.GetDocumentMessage()
		msg.Kind, msg.Text, ci = bridge.Document, x.GetCaption(), x.GetContextInfo()
		name := x.GetFileName()
		if name == "" {
			name = x.GetTitle()
		}
		msg.Media = media(x, "document", x.GetMimetype(), name, x.GetFileLength(), 0)
	case m.StickerMessage != nil:
		x := m.GetStickerMessage()
		msg.Kind, ci = bridge.Sticker, x.GetContextInfo()
		msg.Media = media(x, "sticker", x.GetMimetype(), "", x.GetFileLength(), 0)
	default:
		return nil, false
	}
	return ci, true
}

// textContent fills msg from a plain or extended text and returns its
// context; ok is false when m is not text.
func textContent(msg *bridge.Message, m *waE2E.Message) (ci *waE2E.ContextInfo, ok bool) {
	switch {
	case m.Conversation != nil:
		msg.Kind, msg.Text = bridge.Text, m.GetConversation()
	case m.ExtendedTextMessage != nil:
		x := m.GetExtendedTextMessage()
		msg.Kind, msg.Text, ci = bridge.Text, x.GetText(), x.GetContextInfo()
	default:
		return nil, false
	}
	return ci, true
}

// otherContent fills msg from a location, contact cards or a poll and
// returns its context; ok is false when m is none of them.
func otherContent(msg *bridge.Message, m *waE2E.Message) (ci *waE2E.ContextInfo, ok bool) {
	switch {
	case m.LocationMessage != nil:
		x := m.GetLocationMessage()
		msg.Kind, msg.Text, ci = bridge.Location, x.GetComment(), x.GetContextInfo()
		msg.Location = &bridge.Geo{Lat: x.GetDegreesLatitude(), Lon: x.GetDegreesLongitude(), Name: x.GetName(), Address: x.GetAddress()}
	case m.LiveLocationMessage != nil:
		x := m.GetLiveLocationMessage()
		msg.Kind, msg.Text, ci = bridge.LiveLocation, x.GetCaption(), x.GetContextInfo()
		msg.Location = &bridge.Geo{Lat: x.GetDegreesLatitude(), Lon: x.GetDegreesLongitude()}
	case m.ContactMessage != nil:
		x := m.GetContactMessage()
		msg.Kind, ci = bridge.ContactCard, x.GetContextInfo()
		msg.Contacts = []bridge.Contact{contact(x)}
	case m.ContactsArrayMessage != nil:
		x := m.GetContactsArrayMessage()
		msg.Kind, ci = bridge.ContactCard, x.GetContextInfo()
		for _, cm := range x.GetContacts() {
			msg.Contacts = append(msg.Contacts, contact(cm))
		}
	case pollCreation(m) != nil:
		x := pollCreation(m)
		msg.Kind, ci = bridge.Poll, x.GetContextInfo()
		p := &bridge.PollInfo{Question: x.GetName(), Selectable: int(x.GetSelectableOptionsCount())}
		for _, o := range x.GetOptions() {
			p.Options = append(p.Options, o.GetOptionName())
		}
		msg.Poll = p
	default:
		return nil, false
	}
	return ci, true
}

// context takes forwarding, mentions and the quoted message from ci.
func (c *converter) context(msg *bridge.Message, info types.MessageInfo, ci *waE2E.ContextInfo) {
	if ci == nil {
		return
	}
	msg.Forwarded = ci.GetIsForwarded()
	for _, j := range ci.GetMentionedJID() {
		msg.Mentions = append(msg.Mentions, bridge.UserID(j))
	}
	if id := ci.GetStanzaID(); id != "" {
		r := c.quoteRef(info, ci)
		msg.ReplyTo = &r
		msg.QuotedText = text(ci.GetQuotedMessage())
	}
}

// unwrap removes WhatsApp's envelope messages (ephemeral, view-once,
// device-sent, document-with-caption, future-proof wrappers), which
// whatsmeow's UnwrapRaw removes too; history-sync messages come wrapped.
func unwrap(m *waE2E.Message) *waE2E.Message {
	for range 8 { // wrappers nest at most a few deep; bound it for fuzzed input
		var next *waE2E.Message
		switch {
		case m.GetDeviceSentMessage().GetMessage() != nil:
			next = m.GetDeviceSentMessage().GetMessage()
		case m.GetBotInvokeMessage().GetMessage() != nil:
			next = m.GetBotInvokeMessage().GetMessage()
		case m.GetEphemeralMessage().GetMessage() != nil:
			next = m.GetEphemeralMessage().GetMessage()
		case m.GetViewOnceMessage().GetMessage() != nil:
			next = m.GetViewOnceMessage().GetMessage()
		case m.GetViewOnceMessageV2().GetMessage() != nil:
			next = m.GetViewOnceMessageV2().GetMessage()
		case m.GetViewOnceMessageV2Extension().GetMessage() != nil:
			next = m.GetViewOnceMessageV2Extension().GetMessage()
		case m.GetLottieStickerMessage().GetMessage() != nil:
			next = m.GetLottieStickerMessage().GetMessage()
		case m.GetDocumentWithCaptionMessage().GetMessage() != nil:
			next = m.GetDocumentWithCaptionMessage().GetMessage()
		case m.GetEditedMessage().GetMessage() != nil:
			next = m.GetEditedMessage().GetMessage()
		case m.GetGroupMentionedMessage().GetMessage() != nil:
			next = m.GetGroupMentionedMessage().GetMessage()
		default:
			return m
		}
		m = next
	}
	return m
}

func isViewOnce(m *waE2E.Message) bool {
	return m.GetViewOnceMessage() != nil || m.GetViewOnceMessageV2() != nil || m.GetViewOnceMessageV2Extension() != nil
}

func pollCreation(m *waE2E.Message) *waE2E.PollCreationMessage {
	for _, p := range []*waE2E.PollCreationMessage{m.GetPollCreationMessage(), m.GetPollCreationMessageV2(), m.GetPollCreationMessageV3(), m.GetPollCreationMessageV5(), m.GetPollCreationMessageV6()} {
		if p != nil {
			return p
		}
	}
	if fp := m.GetPollCreationMessageV4().GetMessage(); fp != nil && fp != m {
		return pollCreation(fp)
	}
	return nil
}

// text is the visible text of a message: the plain or extended text, or a
// caption.
func text(m *waE2E.Message) string {
	m = unwrap(m)
	switch {
	case m == nil:
		return ""
	case m.Conversation != nil:
		return m.GetConversation()
	case m.ExtendedTextMessage != nil:
		return m.GetExtendedTextMessage().GetText()
	case m.ImageMessage != nil:
		return m.GetImageMessage().GetCaption()
	case m.VideoMessage != nil:
		return m.GetVideoMessage().GetCaption()
	case m.DocumentMessage != nil:
		return m.GetDocumentMessage().GetCaption()
	case pollCreation(m) != nil:
		return pollCreation(m).GetName()
	}
	return ""
}

func contact(c *waE2E.ContactMessage) bridge.Contact {
	return bridge.Contact{Name: c.GetDisplayName(), Numbers: vcardNumbers(c.GetVcard()), VCard: c.GetVcard()}
}

// vcardNumbers picks the phone numbers out of a vCard's TEL lines,
// preferring WhatsApp's waid parameter (the number without formatting).
func vcardNumbers(vc string) []string {
	var out []string
	for line := range strings.Lines(vc) {
		line = strings.TrimRight(line, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		// Grouped properties look like "item1.TEL;waid=…".
		if i := strings.LastIndexByte(name, '.'); i >= 0 && !strings.Contains(name[:i], ";") {
			name = name[i+1:]
		}
		params := strings.Split(name, ";")
		if !strings.EqualFold(params[0], "TEL") {
			continue
		}
		num := ""
		for _, p := range params[1:] {
			if k, v, ok := strings.Cut(p, "="); ok && strings.EqualFold(k, "waid") {
				num = "+" + v
			}
		}
		if num == "" {
			num = normalizeNumber(value)
		}
		if num != "" && num != "+" {
			out = append(out, num)
		}
	}
	return out
}

// normalizeNumber keeps the digits of a formatted number and a leading '+'.
func normalizeNumber(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		if r == '+' && i == 0 {
			b.WriteRune(r)
		} else if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mediaHandle is what Media.Handle holds: all a download needs, without
// the original message.
type mediaHandle struct {
	Type       string `json:"t"` // image, video, audio, document, sticker
	DirectPath string `json:"p"`
	MediaKey   []byte `json:"k"`
	EncSHA256  []byte `json:"e"`
	SHA256     []byte `json:"h"`
	Length     uint64 `json:"n"`
}

type downloadable interface {
	GetDirectPath() string
	GetMediaKey() []byte
	GetFileEncSHA256() []byte
	GetFileSHA256() []byte
}

func media(d downloadable, kind, mime, name string, size uint64, seconds uint32) *bridge.Media {
	h, _ := json.Marshal(mediaHandle{Type: kind, DirectPath: d.GetDirectPath(), MediaKey: d.GetMediaKey(),
		EncSHA256: d.GetFileEncSHA256(), SHA256: d.GetFileSHA256(), Length: size})
	return &bridge.Media{MimeType: mime, FileName: name, Size: int64(size),
		Duration: time.Duration(seconds) * time.Second, Handle: string(h)}
}

func (c *converter) reaction(info types.MessageInfo, r *waE2E.ReactionMessage) bridge.Event {
	t := info.Timestamp
	if ms := r.GetSenderTimestampMS(); ms > 0 {
		t = time.UnixMilli(ms).UTC()
	}
	return &bridge.Reaction{Target: c.keyRef(info, r.GetKey()), Sender: userID(info.Sender), FromMe: info.IsFromMe, Emoji: r.GetText(), Time: t}
}

// optionFor finds the option whose SHA-256 is h; an unknown poll's option
// shows as its hash's start, so a vote is never dropped.
func optionFor(opts []string, h []byte) string {
	for _, o := range opts {
		if s := sha256.Sum256([]byte(o)); string(s[:]) == string(h) {
			return o
		}
	}
	if len(h) > 6 {
		h = h[:6]
	}
	return "option " + base64.RawStdEncoding.EncodeToString(h)
}

func (c *converter) receipt(e *events.Receipt) []bridge.Event {
	if e.IsFromMe {
		return nil // the owner's other devices: not a receipt for the owner
	}
	var k bridge.ReceiptKind
	switch e.Type {
	case types.ReceiptTypeDelivered:
		k = bridge.Delivered
	case types.ReceiptTypeRead:
		k = bridge.Read
	case types.ReceiptTypePlayed:
		k = bridge.Played
	default:
		// read-self, played-self (the owner's other devices), sender,
		// retry, server-error, inactive, peer: not about the owner's messages.
		return nil
	}
	out := c.aliases(e.MessageSource)
	return append(out, &bridge.Receipt{Chat: chatID(e.Chat), By: userID(e.Sender), IDs: append([]string(nil), e.MessageIDs...), Kind: k, Time: e.Timestamp})
}

func (c *converter) groupInfo(e *events.GroupInfo) []bridge.Event {
	var out []bridge.Event
	var actor bridge.UserID
	if e.Sender != nil {
		actor = userID(*e.Sender)
		if e.SenderPN != nil {
			out = append(out, alias(*e.Sender, *e.SenderPN)...)
		}
	}
	chat := chatID(e.JID)
	add := func(k bridge.GroupChangeKind, users []types.JID) {
		if len(users) == 0 {
			return
		}
		g := &bridge.GroupChange{Chat: chat, Actor: actor, Kind: k, Time: e.Timestamp}
		for _, u := range users {
			g.Users = append(g.Users, userID(u))
		}
		out = append(out, g)
	}
	if e.Name != nil {
		out = append(out, &bridge.ChatInfo{Chat: chat, Kind: bridge.Group, Name: e.Name.Name},
			&bridge.GroupChange{Chat: chat, Actor: actor, Kind: bridge.GroupSubject, Subject: e.Name.Name, Time: e.Timestamp})
	}
	if e.Topic != nil {
		out = append(out, &bridge.GroupChange{Chat: chat, Actor: actor, Kind: bridge.GroupDescription, Text: e.Topic.Topic, Time: e.Timestamp})
	}
	add(bridge.GroupJoined, e.Join)
	add(bridge.GroupLeft, e.Leave)
	add(bridge.GroupPromoted, e.Promote)
	add(bridge.GroupDemoted, e.Demote)
	return out
}

func (c *converter) joinedGroup(e *events.JoinedGroup) []bridge.Event {
	chat := chatID(e.JID)
	out := []bridge.Event{&bridge.ChatInfo{Chat: chat, Kind: bridge.Group, Name: e.Name}}
	if e.Sender != nil && e.SenderPN != nil {
		out = append(out, alias(*e.Sender, *e.SenderPN)...)
	}
	for _, p := range e.Participants {
		out = append(out, alias(p.LID, p.PhoneNumber)...)
	}
	g := &bridge.GroupChange{Chat: chat, Kind: bridge.GroupJoined, Time: e.GroupCreated}
	if e.Type == "new" {
		g.Kind = bridge.GroupCreated
	}
	if e.Sender != nil {
		g.Actor = userID(*e.Sender)
	}
	if self := c.self(); !self.IsEmpty() {
		g.Users = []bridge.UserID{userID(self)}
	}
	return append(out, g)
}

func (c *converter) call(m types.BasicCallMeta, k bridge.CallKind, video bool) bridge.Event {
	from := m.CallCreator
	if from.IsEmpty() {
		from = m.From
	}
	chat := chatID(from)
	if !m.GroupJID.IsEmpty() {
		chat = chatID(m.GroupJID)
	}
	return &bridge.Call{Chat: chat, From: userID(from), ID: m.CallID, Video: video, Kind: k, Time: m.Timestamp}
}

// ref is the message's own reference.
func (c *converter) ref(info types.MessageInfo) bridge.MsgRef {
	return bridge.MsgRef{Chat: chatID(info.Chat), Sender: userID(info.Sender), ID: info.ID, FromMe: info.IsFromMe}
}

// keyRef resolves a MessageKey inside a message (the target of a revoke,
// edit, reaction or vote). WhatsApp writes keys from the point of view of
// the message's author: FromMe means "written by the author of this
// message", and in direct chats the participant is left out.
func (c *converter) keyRef(info types.MessageInfo, key *waCommon.MessageKey) bridge.MsgRef {
	r := bridge.MsgRef{Chat: chatID(info.Chat), ID: key.GetID()}
	switch p := key.GetParticipant(); {
	case p != "":
		j, _ := types.ParseJID(p)
		r.Sender = userID(j)
		r.FromMe = c.isSelf(j) || j.User == info.Sender.User && info.IsFromMe
	case key.GetFromMe():
		r.Sender, r.FromMe = userID(info.Sender), info.IsFromMe
	case info.IsFromMe:
		r.Sender = userID(info.Chat) // the owner's key to the peer's message
	default:
		r.Sender, r.FromMe = userID(c.self()), true
	}
	return r
}

// quoteRef resolves a reply's quoted message: ContextInfo names its sender
// as participant (in direct chats too, usually).
func (c *converter) quoteRef(info types.MessageInfo, ci *waE2E.ContextInfo) bridge.MsgRef {
	return c.keyRef(info, &waCommon.MessageKey{ID: ci.StanzaID, Participant: ci.Participant})
}

// aliases reports the LID⇄phone pairs a message's addressing reveals.
func (c *converter) aliases(s types.MessageSource) []bridge.Event {
	out := alias(s.Sender, s.SenderAlt)
	if !s.IsGroup && s.IsFromMe {
		// RecipientAlt is the other identity of whom a direct message
		// went to: the peer only for the owner's own messages.
		out = append(out, alias(s.Chat, s.RecipientAlt)...)
	}
	return out
}

// alias returns an Alias if a and b are a LID and a phone-number JID.
func alias(a, b types.JID) []bridge.Event {
	a, b = a.ToNonAD(), b.ToNonAD()
	if a.IsEmpty() || b.IsEmpty() {
		return nil
	}
	if a.Server == types.DefaultUserServer && b.Server == types.HiddenUserServer {
		a, b = b, a
	}
	if a.Server != types.HiddenUserServer || b.Server != types.DefaultUserServer {
		return nil
	}
	return []bridge.Event{&bridge.Alias{LID: bridge.UserID(a.String()), Phone: bridge.UserID(b.String())}}
}

func userID(j types.JID) bridge.UserID {
	if j.IsEmpty() {
		return ""
	}
	return bridge.UserID(j.ToNonAD().String())
}

func chatID(j types.JID) bridge.ChatID {
	if j.IsEmpty() {
		return ""
	}
	return bridge.ChatID(j.ToNonAD().String())
}

// hasChild reports whether a call node has a child tag (a call offer has
// <video/> for video calls).
func hasChild(n *waBinary.Node, tag string) bool {
	if n == nil {
		return false
	}
	for _, c := range n.GetChildren() {
		if c.Tag == tag {
			return true
		}
	}
	return false
}
