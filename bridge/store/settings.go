package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SettingValue is what a setting may hold.
type SettingValue interface {
	string | int64 | bool | time.Time | time.Duration | []byte
}

// Type tags of setting records: a value read as a different type than it was
// written is an error, not a silent zero.
const (
	tagString byte = iota + 1
	tagInt
	tagBool
	tagTime
	tagDuration
	tagBytes
)

var tagNames = map[byte]string{tagString: "string", tagInt: "int64", tagBool: "bool", tagTime: "time", tagDuration: "duration", tagBytes: "bytes"}

const settingRecordV1 = 1

func encodeSetting[T SettingValue](v T) []byte {
	e := enc{b: []byte{settingRecordV1}}
	switch x := any(v).(type) {
	case string:
		e.b = append(e.b, tagString)
		e.str(x)
	case int64:
		e.b = append(e.b, tagInt)
		e.int(x)
	case bool:
		e.b = append(e.b, tagBool)
		if x {
			e.uint(1)
		} else {
			e.uint(0)
		}
	case time.Time:
		e.b = append(e.b, tagTime)
		e.time(x)
	case time.Duration:
		e.b = append(e.b, tagDuration)
		e.int(int64(x))
	case []byte:
		e.b = append(e.b, tagBytes)
		e.bytes(x)
	}
	return e.b
}

// decodeSetting decodes the record under name; it returns the value as the
// dynamic type its tag names.
func decodeSetting(name, v []byte) (any, error) {
	d := dec{b: v}
	if ver := d.byte1(); d.err == "" && ver != settingRecordV1 {
		return nil, corrupt(bucketSettings, name, fmt.Sprintf("unknown setting record version %d", ver))
	}
	var out any
	switch tag := d.byte1(); tag {
	case tagString:
		out = d.str()
	case tagInt:
		out = d.int()
	case tagBool:
		b := d.uint()
		if b > 1 {
			d.fail("bool is not 0 or 1")
		}
		out = b == 1
	case tagTime:
		out = d.time()
	case tagDuration:
		out = time.Duration(d.int())
	case tagBytes:
		out = append([]byte{}, d.bytes()...)
	default:
		d.fail(fmt.Sprintf("unknown setting type %d", tag))
	}
	if d.err != "" {
		return nil, corrupt(bucketSettings, name, d.err)
	}
	return out, nil
}

// GetSetting reads setting name as a T. ok is false if it was never set.
func GetSetting[T SettingValue](db *DB, name string) (v T, ok bool, err error) {
	lazy, isLazy := db.lazy.get(name)
	err = db.bolt.View(func(tx *bolt.Tx) error {
		raw := lazy
		if !isLazy {
			raw = tx.Bucket(bucketSettings).Get([]byte(name))
		}
		if raw == nil {
			return nil
		}
		x, err := decodeSetting([]byte(name), raw)
		if err != nil {
			return err
		}
		if v, ok = x.(T); !ok {
			var want T
			return fmt.Errorf("holds a %s, not a %s", tagNames[raw[1]], tagNames[encodeSetting(want)[1]])
		}
		return nil
	})
	if err != nil {
		return v, false, fmt.Errorf("store: setting %s: %w", name, err)
	}
	return v, ok, nil
}

// PutSetting durably sets setting name to v.
func PutSetting[T SettingValue](db *DB, name string, v T) error {
	if name == "" {
		return fmt.Errorf("store: put setting: empty name")
	}
	rec := encodeSetting(v)
	db.lazy.drop(name)
	err := db.write(func(tx *bolt.Tx) error {
		if name == settingRoute {
			db.cache.changed(tx)
		}
		return tx.Bucket(bucketSettings).Put([]byte(name), rec)
	})
	if err != nil {
		return fmt.Errorf("store: put setting %s: %w", name, err)
	}
	return nil
}

// PutSettingLater sets setting name to v without a commit of its own: v
// is written with the next commit of any write (or by Close), and
// GetSetting reads it at once. For a value whose loss in a crash costs
// repeated work only, never data: the XMPP archive cursor (after a crash
// the server's archive is replayed from an older one, and the core drops
// by id what it had handled). A later PutSetting or DeleteSetting of name
// supersedes it.
func PutSettingLater[T SettingValue](db *DB, name string, v T) error {
	if name == "" {
		return fmt.Errorf("store: put setting: empty name")
	}
	if db.opts.ReadOnly {
		return fmt.Errorf("store: put setting %s: %w", name, bolterrors.ErrDatabaseReadOnly)
	}
	db.lazy.set(name, encodeSetting(v))
	if name == settingRoute {
		db.cache.reset()
	}
	return nil
}

// DeleteSetting removes setting name.
func (db *DB) DeleteSetting(name string) error {
	db.lazy.drop(name)
	err := db.write(func(tx *bolt.Tx) error {
		if name == settingRoute {
			db.cache.changed(tx)
		}
		return tx.Bucket(bucketSettings).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: delete setting %s: %w", name, err)
	}
	return nil
}

// settingRoute holds the id of the chat that what the owner writes to the bot
// goes to, until they address another.
const settingRoute = "route"

// Route returns the current routing target's chat id; ok is false if none.
// A route to a chat that was since merged into another (AddAlias) resolves to
// the merged chat.
func (db *DB) Route() (chatID string, ok bool, err error) {
	if r, ok := db.cache.getRoute(); ok {
		return r.id, r.ok, nil
	}
	gen := db.cache.generation()
	id, ok, err := GetSetting[string](db, settingRoute)
	if err != nil {
		return "", false, err
	}
	if !ok {
		db.cache.putRoute(gen, cachedRoute{})
		return "", false, nil
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		chatID = resolve(tx, id)
		return nil
	})
	if err != nil {
		return "", false, err
	}
	db.cache.putRoute(gen, cachedRoute{chatID, true})
	return chatID, true, nil
}

// SetRoute makes chat id (or an alias of it) the routing target. The chat must
// exist; the canonical id is stored.
func (db *DB) SetRoute(id string) error {
	err := db.write(func(tx *bolt.Tx) error {
		db.cache.changed(tx)
		c, ok, err := getChat(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		return tx.Bucket(bucketSettings).Put([]byte(settingRoute), encodeSetting(c.ID))
	})
	if err != nil {
		return fmt.Errorf("store: set route to %s: %w", id, err)
	}
	return nil
}

// Blob reads setting name as bytes (a record the caller encodes itself, such
// as the core's held messages). ok is false if it was never set.
func (db *DB) Blob(name string) (v []byte, ok bool, err error) {
	return GetSetting[[]byte](db, name)
}

// PutBlob durably sets setting name to v.
func (db *DB) PutBlob(name string, v []byte) error {
	return PutSetting(db, name, v)
}
