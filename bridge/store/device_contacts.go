package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// jidKey is the stored form of a JID column: its string. sqlstore writes
// an empty JID as NULL, which no query finds again; bbolt has no NULL key,
// so writes keyed by an empty JID fail instead.
func jidKey(j types.JID) ([]byte, error) {
	if j.Server == "" {
		return nil, errors.New("store: empty JID")
	}
	return []byte(j.String()), nil
}

// --- ContactStore ---

func (s *deviceStore) getContact(tx *bolt.Tx, k []byte) (contactRecord, bool, error) {
	b := s.read(tx, bktContact)
	if b == nil {
		return contactRecord{}, false, nil
	}
	v := b.Get(k)
	if v == nil {
		return contactRecord{}, false, nil
	}
	r, err := decodeContact(k, v)
	return r, err == nil, err
}

// putContactField reads the contact, and if field differs from name,
// stores it. It returns whether it changed and the previous value, which is
// what PutPushName and PutBusinessName report.
func (s *deviceStore) putContactField(ctx context.Context, user types.JID, name string, field func(*contactRecord) *string) (changed bool, previous string, err error) {
	k := []byte(user.String())
	// whatsmeow stores the push name of every message that carries one
	// (message.go's handleEncryptedMessage), nearly always unchanged: a
	// write transaction that changes nothing still costs a commit.
	same := false
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		r, _, err := s.getContact(tx, k)
		same = err == nil && *field(&r) == name
		return nil
	})
	if err != nil || same {
		return false, "", err
	}
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		r, _, err := s.getContact(tx, k)
		if err != nil {
			return err
		}
		if *field(&r) == name {
			return nil
		}
		if user.Server == "" {
			return errors.New("store: empty JID")
		}
		b, err := s.write(tx, bktContact)
		if err != nil {
			return err
		}
		previous = *field(&r)
		*field(&r) = name
		changed = true
		return b.Put(k, r.encode())
	})
	if err != nil {
		return false, "", err
	}
	return changed, previous, nil
}

// PutPushName stores a push name. It returns true and the old name if the
// name changed; storing the name already stored (or "" for an unknown
// contact) writes nothing and returns false, "".
func (s *deviceStore) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	return s.putContactField(ctx, user, pushName, func(r *contactRecord) *string { return &r.push })
}

// PutBusinessName is PutPushName for the verified business name.
func (s *deviceStore) PutBusinessName(ctx context.Context, user types.JID, businessName string) (bool, string, error) {
	return s.putContactField(ctx, user, businessName, func(r *contactRecord) *string { return &r.business })
}

// PutContactName stores the address-book names if they changed. Note the
// argument order: whatsmeow's interface names them (fullName, firstName) but
// sqlstore, and every caller, uses (firstName, fullName); we follow sqlstore.
func (s *deviceStore) PutContactName(ctx context.Context, user types.JID, firstName, fullName string) error {
	k := []byte(user.String())
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		r, _, err := s.getContact(tx, k)
		if err != nil {
			return err
		}
		if r.first == firstName && r.full == fullName {
			return nil
		}
		if user.Server == "" {
			return errors.New("store: empty JID")
		}
		b, err := s.write(tx, bktContact)
		if err != nil {
			return err
		}
		r.first, r.full = firstName, fullName
		return b.Put(k, r.encode())
	})
}

// putManyContacts upserts one field per entry in one transaction. Like
// sqlstore (exslices.DeduplicateUnsortedOverwriteFunc), the first entry for
// a JID wins; unlike it, the caller's slice is not reordered.
func (s *deviceStore) putManyContacts(ctx context.Context, n int, entry func(i int) (types.JID, func(*contactRecord))) error {
	if n == 0 {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktContact)
		if err != nil {
			return err
		}
		seen := make(map[types.JID]struct{}, n)
		for i := range n {
			jid, set := entry(i)
			if _, dup := seen[jid]; dup {
				continue
			}
			seen[jid] = struct{}{}
			k, err := jidKey(jid)
			if err != nil {
				return err
			}
			r, _, err := s.getContact(tx, k)
			if err != nil {
				return err
			}
			set(&r)
			if err := b.Put(k, r.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutAllContactNames stores the names of many contacts (an app-state full
// sync) in one transaction.
func (s *deviceStore) PutAllContactNames(ctx context.Context, contacts []wastore.ContactEntry) error {
	return s.putManyContacts(ctx, len(contacts), func(i int) (types.JID, func(*contactRecord)) {
		c := contacts[i]
		return c.JID, func(r *contactRecord) { r.first, r.full = c.FirstName, c.FullName }
	})
}

// PutManyRedactedPhones stores redacted phone numbers in one transaction.
func (s *deviceStore) PutManyRedactedPhones(ctx context.Context, entries []wastore.RedactedPhoneEntry) error {
	return s.putManyContacts(ctx, len(entries), func(i int) (types.JID, func(*contactRecord)) {
		e := entries[i]
		return e.JID, func(r *contactRecord) { r.redactedPhone = e.RedactedPhone }
	})
}

func contactInfo(r contactRecord, found bool) types.ContactInfo {
	return types.ContactInfo{
		Found:         found,
		FirstName:     r.first,
		FullName:      r.full,
		PushName:      r.push,
		BusinessName:  r.business,
		RedactedPhone: r.redactedPhone,
	}
}

// GetContact returns the contact, with Found false if unknown.
func (s *deviceStore) GetContact(ctx context.Context, user types.JID) (types.ContactInfo, error) {
	var info types.ContactInfo
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		r, found, err := s.getContact(tx, []byte(user.String()))
		info = contactInfo(r, found)
		return err
	})
	if err != nil {
		return types.ContactInfo{}, err
	}
	return info, nil
}

// GetAllContacts returns every contact keyed by its parsed JID.
func (s *deviceStore) GetAllContacts(ctx context.Context) (map[types.JID]types.ContactInfo, error) {
	out := make(map[types.JID]types.ContactInfo)
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktContact)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeContact(k, v)
			if err != nil {
				return err
			}
			jid, err := types.ParseJID(string(k))
			if err != nil {
				return fmt.Errorf("store: bucket %s key %q: %w", bktContact, k, err)
			}
			out[jid] = contactInfo(r, true)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// --- ChatSettingsStore ---

func (s *deviceStore) putChatSetting(ctx context.Context, chat types.JID, set func(*chatSettingsRecord)) error {
	k, err := jidKey(chat)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktChatSettings)
		if err != nil {
			return err
		}
		var r chatSettingsRecord
		if v := b.Get(k); v != nil {
			if r, err = decodeChatSettings(k, v); err != nil {
				return err
			}
		}
		set(&r)
		return b.Put(k, r.encode())
	})
}

// PutMutedUntil stores the mute deadline as sqlstore does: -1 for
// store.MutedForever (compared with ==, as there), 0 for the zero time,
// else Unix seconds.
func (s *deviceStore) PutMutedUntil(ctx context.Context, chat types.JID, mutedUntil time.Time) error {
	var val int64
	if mutedUntil == wastore.MutedForever {
		val = -1
	} else if !mutedUntil.IsZero() {
		val = mutedUntil.Unix()
	}
	return s.putChatSetting(ctx, chat, func(r *chatSettingsRecord) { r.mutedUntil = val })
}

func (s *deviceStore) PutPinned(ctx context.Context, chat types.JID, pinned bool) error {
	return s.putChatSetting(ctx, chat, func(r *chatSettingsRecord) { r.pinned = pinned })
}

func (s *deviceStore) PutArchived(ctx context.Context, chat types.JID, archived bool) error {
	return s.putChatSetting(ctx, chat, func(r *chatSettingsRecord) { r.archived = archived })
}

// GetChatSettings returns Found false and zero settings for an unknown
// chat. A negative stored mute is MutedForever; a positive one is a local
// time.Unix value, as sqlstore returns it.
func (s *deviceStore) GetChatSettings(ctx context.Context, chat types.JID) (settings types.LocalChatSettings, err error) {
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktChatSettings)
		if b == nil {
			return nil
		}
		k := []byte(chat.String())
		v := b.Get(k)
		if v == nil {
			return nil
		}
		r, err := decodeChatSettings(k, v)
		if err != nil {
			return err
		}
		settings.Found = true
		settings.Pinned = r.pinned
		settings.Archived = r.archived
		if r.mutedUntil < 0 {
			settings.MutedUntil = wastore.MutedForever
		} else if r.mutedUntil > 0 {
			settings.MutedUntil = time.Unix(r.mutedUntil, 0)
		}
		return nil
	})
	if err != nil {
		return types.LocalChatSettings{}, err
	}
	return settings, nil
}

// --- MsgSecretStore ---

func msgSecretKey(chat, sender string, id types.MessageID) []byte {
	return append(lp(chat, sender), id...)
}

// PutMessageSecrets stores the secrets in one transaction; an existing
// secret is kept (ON CONFLICT DO NOTHING).
func (s *deviceStore) PutMessageSecrets(ctx context.Context, inserts []wastore.MessageSecretInsert) error {
	if len(inserts) == 0 {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		for _, in := range inserts {
			if err := s.putMessageSecret(tx, in.Chat, in.Sender, in.ID, in.Secret); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *deviceStore) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		return s.putMessageSecret(tx, chat, sender, id, secret)
	})
}

func (s *deviceStore) putMessageSecret(tx *bolt.Tx, chat, sender types.JID, id types.MessageID, secret []byte) error {
	chat, sender = chat.ToNonAD(), sender.ToNonAD()
	if chat.Server == "" || sender.Server == "" {
		return errors.New("store: empty JID")
	}
	if secret == nil {
		return errors.New("store: message secret must not be null")
	}
	b, err := s.write(tx, bktMsgSecret)
	if err != nil {
		return err
	}
	k := msgSecretKey(chat.String(), sender.String(), id)
	if b.Get(k) != nil {
		return nil
	}
	return b.Put(k, encodeBlob(secret))
}

// altJID is the CASE expression of sqlstore's secret and token queries: the
// other identity (phone number or LID) of a non-AD user JID string, via the
// LID map, or "" if there is none.
func altJID(tx *bolt.Tx, jid string) string {
	switch {
	case strings.HasSuffix(jid, "@"+types.HiddenUserServer):
		if pn := tx.Bucket(bktLIDToPN).Get([]byte(strings.ReplaceAll(jid, "@"+types.HiddenUserServer, ""))); pn != nil {
			return string(pn) + "@" + types.DefaultUserServer
		}
	case strings.HasSuffix(jid, "@"+types.DefaultUserServer):
		if lid := tx.Bucket(bktPNToLID).Get([]byte(strings.ReplaceAll(jid, "@"+types.DefaultUserServer, ""))); lid != nil {
			return string(lid) + "@" + types.HiddenUserServer
		}
	}
	return ""
}

// GetMessageSecret finds the secret stored under the chat and sender or
// their other identity (PN or LID). It returns the sender the secret was
// stored with, or nil and an empty JID. If several rows match, the smallest
// (chat, sender) wins, as in SQLite's plan (see candidates).
func (s *deviceStore) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) (secret []byte, realSender types.JID, err error) {
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktMsgSecret)
		if b == nil {
			return nil
		}
		chatS, senderS := chat.ToNonAD().String(), sender.ToNonAD().String()
		chats := candidates(chatS, altJID(tx, chatS))
		senders := candidates(senderS, altJID(tx, senderS))
		var bestChat, bestSender string
		var best []byte
		found := false
		for _, c := range chats {
			for _, snd := range senders {
				k := msgSecretKey(c, snd, id)
				v := b.Get(k)
				if v == nil {
					continue
				}
				if !found || c < bestChat || (c == bestChat && snd < bestSender) {
					sec, err := decodeBlob(bktMsgSecret, k, v)
					if err != nil {
						return err
					}
					best, bestChat, bestSender, found = sec, c, snd, true
				}
			}
		}
		if !found {
			return nil
		}
		rs, err := types.ParseJID(bestSender)
		if err != nil {
			return fmt.Errorf("store: bucket %s: sender %q: %w", bktMsgSecret, bestSender, err)
		}
		secret, realSender = best, rs
		return nil
	})
	if err != nil {
		return nil, types.JID{}, err
	}
	return secret, realSender, nil
}

// candidates is the value list SQLite makes of `col=a OR col=alt`: it
// rewrites it to `col IN (a, alt)` and walks an IN list in sorted order,
// so where several rows match, the first in byte order of the JID string
// wins (EXPLAIN QUERY PLAN shows the index search).
func candidates(a, alt string) []string {
	switch {
	case alt == "" || alt == a:
		return []string{a}
	case alt < a:
		return []string{alt, a}
	}
	return []string{a, alt}
}

// --- PrivacyTokenStore ---

// PutPrivacyTokens upserts tokens. A stored token is replaced only by one
// at least as new; a zero SenderTimestamp keeps the stored one. Tokens are
// applied in order, like SQLite's multi-row upsert. As in sqlstore, privacy
// tokens do not need a saved device, and no tokens at all is an error (the
// SQL statement would have no VALUES).
func (s *deviceStore) PutPrivacyTokens(ctx context.Context, tokens ...wastore.PrivacyToken) error {
	if len(tokens) == 0 {
		return errors.New("store: no privacy tokens")
	}
	for _, t := range tokens {
		if t.Token == nil {
			return errors.New("store: privacy token must not be null")
		}
		if t.User.Server == "" {
			return errors.New("store: empty JID")
		}
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bktPrivacyToken).CreateBucketIfNotExists(s.jid)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			k := []byte(t.User.ToNonAD().String())
			r := privacyTokenRecord{token: t.Token, timestamp: t.Timestamp.Unix()}
			if !t.SenderTimestamp.IsZero() {
				r.hasSenderTS, r.senderTimestamp = true, t.SenderTimestamp.Unix()
			}
			if v := b.Get(k); v != nil {
				old, err := decodePrivacyToken(k, v)
				if err != nil {
					return err
				}
				if r.timestamp < old.timestamp {
					continue
				}
				if !r.hasSenderTS {
					r.hasSenderTS, r.senderTimestamp = old.hasSenderTS, old.senderTimestamp
				}
			}
			if err := b.Put(k, r.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetPrivacyToken returns the newest token stored for the user or their
// other identity (PN or LID), or nil, nil. On equal timestamps the smaller
// JID string wins, as SQLite's sort of its IN-list walk (see candidates)
// gives.
func (s *deviceStore) GetPrivacyToken(ctx context.Context, user types.JID) (*wastore.PrivacyToken, error) {
	user = user.ToNonAD()
	var out *wastore.PrivacyToken
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktPrivacyToken)
		if b == nil {
			return nil
		}
		us := user.String()
		var best *privacyTokenRecord
		for _, c := range candidates(us, altJID(tx, us)) {
			k := []byte(c)
			v := b.Get(k)
			if v == nil {
				continue
			}
			r, err := decodePrivacyToken(k, v)
			if err != nil {
				return err
			}
			if best == nil || r.timestamp > best.timestamp {
				best = &r
			}
		}
		if best == nil {
			return nil
		}
		out = &wastore.PrivacyToken{User: user, Token: best.token, Timestamp: time.Unix(best.timestamp, 0)}
		if best.hasSenderTS {
			out.SenderTimestamp = time.Unix(best.senderTimestamp, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteExpiredPrivacyTokens deletes tokens older than cutoff (seconds) and
// returns how many.
func (s *deviceStore) DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		b := s.read(tx, bktPrivacyToken)
		if b == nil {
			return nil
		}
		d, err := deleteWhere(b, func(k, v []byte) (bool, error) {
			r, err := decodePrivacyToken(k, v)
			return err == nil && r.timestamp < cutoff.Unix(), err
		})
		n = int64(d)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// --- NCTSaltStore ---

func (s *deviceStore) PutNCTSalt(ctx context.Context, salt []byte) error {
	if salt == nil {
		return errors.New("store: salt must not be null")
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if err := deviceExists(tx, s.jid); err != nil {
			return err
		}
		return tx.Bucket(bktNCTSalt).Put(s.jid, encodeBlob(salt))
	})
}

// GetNCTSalt returns nil, nil if there is no salt.
func (s *deviceStore) GetNCTSalt(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bktNCTSalt).Get(s.jid)
		if v == nil {
			return nil
		}
		var err error
		out, err = decodeBlob(bktNCTSalt, s.jid, v)
		return err
	})
	return out, err
}

func (s *deviceStore) DeleteNCTSalt(ctx context.Context) error {
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bktNCTSalt).Delete(s.jid)
	})
}
