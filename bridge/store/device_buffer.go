package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// The event buffer remembers the plaintext of every decrypted message by
// the hash of its ciphertext, so a message the server delivers again after
// a crash is neither decrypted twice (which would fail: the ratchet moved)
// nor lost. DoDecryptionTxn makes "advance the ratchet" and "remember the
// plaintext" one commit.

// eventBufferTTL and retryBufferTTL are sqlstore's: the server buffers
// events for 14 days; retry receipts come within days of sending.
const (
	eventBufferTTL = 14 * 24 * time.Hour
	retryBufferTTL = 7 * 24 * time.Hour
)

// GetBufferedEvent returns nil, nil for an unknown hash. Plaintext is nil
// once ClearBufferedEventPlaintext ran, on disk yet or not.
func (s *deviceStore) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*wastore.BufferedEvent, error) {
	var out *wastore.BufferedEvent
	// Asked before the read begins: a clear still waiting is cleared,
	// and one that left the list since is on disk, which the read sees.
	cleared := s.db.lazy.clearing(bufKey{string(s.jid), ciphertextHash})
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktEventBuffer)
		if b == nil {
			return nil
		}
		v := b.Get(ciphertextHash[:])
		if v == nil {
			return nil
		}
		r, err := decodeBufferedEvent(ciphertextHash[:], v)
		if err != nil {
			return err
		}
		if cleared {
			r.plaintext = nil
		}
		out = &wastore.BufferedEvent{Plaintext: r.plaintext, ServerTime: time.Unix(r.serverTS, 0), InsertTime: time.UnixMilli(r.insertTSMS)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutBufferedEvent inserts (never replaces: a second put of a hash is an
// error, as sqlstore's plain INSERT) the plaintext of a decrypted event.
func (s *deviceStore) PutBufferedEvent(ctx context.Context, ciphertextHash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	now := s.c.now()
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktEventBuffer)
		if err != nil {
			return err
		}
		if b.Get(ciphertextHash[:]) != nil {
			return fmt.Errorf("store: buffered event %x already exists", ciphertextHash)
		}
		r := bufferedEventRecord{plaintext: plaintext, serverTS: serverTimestamp.Unix(), insertTSMS: now.UnixMilli()}
		return b.Put(ciphertextHash[:], r.encode())
	})
}

// DoDecryptionTxn runs fn so that all store writes it makes with the
// context it is given commit together, or not at all if fn returns an
// error or panics. See DB.doTxn.
func (s *deviceStore) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	return s.db.doTxn(ctx, fn)
}

// ClearBufferedEventPlaintext forgets a plaintext but keeps the hash, so the
// event is still known as processed. Outside a decryption transaction it
// commits nothing of its own: the plaintext is cleared on disk with the
// next commit of any write, or by Close, and GetBufferedEvent answers it
// cleared at once; only once maxLazyClears wait does it commit itself
// (with all of them). See "Clearing later" in the package doc.
func (s *deviceStore) ClearBufferedEventPlaintext(ctx context.Context, ciphertextHash [32]byte) error {
	if !s.db.opts.ReadOnly && !s.db.inTxn(ctx) && s.db.lazy.clear(bufKey{string(s.jid), ciphertextHash}, maxLazyClears) {
		return nil
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		return clearPlaintext(s.read(tx, bktEventBuffer), ciphertextHash[:])
	})
}

// maxLazyClears bounds how many cleared plaintexts wait for a commit.
// Every relayed message commits (the inbox write, the core's batch, the
// next decryption), so they rarely wait long; the bound caps what a
// crash leaves behind.
const maxLazyClears = 64

// clearPlaintext clears the plaintext of the event under hash in b (a
// device's event buffer; nil or a missing event: nothing to do).
func clearPlaintext(b *bolt.Bucket, hash []byte) error {
	if b == nil {
		return nil
	}
	v := b.Get(hash)
	if v == nil {
		return nil
	}
	r, err := decodeBufferedEvent(hash, v)
	if err != nil {
		return err
	}
	if r.plaintext == nil {
		return nil
	}
	r.plaintext = nil
	return b.Put(hash, r.encode())
}

// DeleteOldBufferedHashes deletes events inserted more than 14 days ago.
// sqlstore's query has no our_jid condition, so it does this for every
// device in the file; so do we.
func (s *deviceStore) DeleteOldBufferedHashes(ctx context.Context) error {
	cutoff := s.c.now().Add(-eventBufferTTL).UnixMilli()
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		top := tx.Bucket(bktEventBuffer)
		var devs [][]byte
		if err := top.ForEachBucket(func(k []byte) error {
			devs = append(devs, append([]byte(nil), k...))
			return nil
		}); err != nil {
			return err
		}
		for _, d := range devs {
			if _, err := deleteWhere(top.Bucket(d), func(k, v []byte) (bool, error) {
				r, err := decodeBufferedEvent(k, v)
				return err == nil && r.insertTSMS < cutoff, err
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// --- outgoing-message retry store ---

// GetOutgoingEvent finds a sent message by chat or alternate chat and ID.
// Not found is sql.ErrNoRows, exactly what sqlstore returns (it does not
// translate it), so callers checking errors.Is(err, sql.ErrNoRows) work.
// If both chats have it, the smaller JID string wins (see candidates).
func (s *deviceStore) GetOutgoingEvent(ctx context.Context, chatJID, altChatJID types.JID, id types.MessageID) (format string, plaintext []byte, err error) {
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktRetryBuffer)
		if b == nil {
			return sql.ErrNoRows
		}
		var chats []string
		switch {
		case chatJID.Server != "" && altChatJID.Server != "":
			chats = candidates(chatJID.String(), altChatJID.String())
		case chatJID.Server != "":
			chats = []string{chatJID.String()}
		case altChatJID.Server != "":
			chats = []string{altChatJID.String()} // an empty JID is NULL: matches nothing
		}
		for _, chat := range chats {
			k := append(lp(chat), id...)
			v := b.Get(k)
			if v == nil {
				continue
			}
			r, err := decodeOutgoing(k, v)
			if err != nil {
				return err
			}
			format, plaintext = r.format, r.plaintext
			return nil
		}
		return sql.ErrNoRows
	})
	if err != nil {
		return "", nil, err
	}
	return format, plaintext, nil
}

// AddOutgoingEvent stores (or replaces) a sent message for answering retry
// receipts.
func (s *deviceStore) AddOutgoingEvent(ctx context.Context, chatJID types.JID, id types.MessageID, format string, plaintext []byte) error {
	if chatJID.Server == "" || plaintext == nil {
		return errors.New("store: outgoing event chat and plaintext must not be null")
	}
	now := s.c.now()
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := s.write(tx, bktRetryBuffer)
		if err != nil {
			return err
		}
		r := outgoingRecord{format: format, plaintext: plaintext, timestampMS: now.UnixMilli()}
		return b.Put(append(lp(chatJID.String()), id...), r.encode())
	})
}

// DeleteOldOutgoingEvents deletes this device's messages stored more than 7
// days ago.
func (s *deviceStore) DeleteOldOutgoingEvents(ctx context.Context) error {
	cutoff := s.c.now().Add(-retryBufferTTL).UnixMilli()
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := s.read(tx, bktRetryBuffer)
		if b == nil {
			return nil
		}
		_, err := deleteWhere(b, func(k, v []byte) (bool, error) {
			r, err := decodeOutgoing(k, v)
			return err == nil && r.timestampMS < cutoff, err
		})
		return err
	})
}

// deleteWhere deletes the records of b for which drop says so and returns
// how many. bbolt forbids deleting while iterating, so keys are collected
// first. An error from drop (a damaged record) stops it, deleting nothing.
func deleteWhere(b *bolt.Bucket, drop func(k, v []byte) (bool, error)) (int, error) {
	var del [][]byte
	err := b.ForEach(func(k, v []byte) error {
		ok, err := drop(k, v)
		if ok {
			del = append(del, append([]byte(nil), k...))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(del), nil
}
