package store

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
)

// Records are a version byte followed by fields in a fixed order: integers
// as fixed-width big-endian, byte strings as uvarint(len+1) then the bytes,
// where a length prefix of 0 means SQL NULL (nil), so NULL and empty stay
// apart as they do in sqlstore's columns. Decoders copy out of the bbolt
// page (a value is only valid inside its transaction), return empty byte
// strings as nil (as sqlstore on SQLite does), and reject short,
// long or unknown-version records with an error naming bucket and key.

const recordVersion = 1

// CorruptError reports a device-store record that cannot be decoded.
type CorruptError struct {
	Bucket string
	Key    []byte
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: bucket %s key %q: corrupt record: %s", e.Bucket, e.Key, e.Reason)
}

type recEncoder struct{ b []byte }

func newRecord() *recEncoder { return &recEncoder{b: []byte{recordVersion}} }

func (e *recEncoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *recEncoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *recEncoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *recEncoder) i64(v int64)  { e.u64(uint64(v)) }
func (e *recEncoder) fixed(v []byte) {
	e.b = append(e.b, v...)
}
func (e *recEncoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// bytes writes a nullable byte string.
func (e *recEncoder) bytes(v []byte) {
	if v == nil {
		e.b = binary.AppendUvarint(e.b, 0)
		return
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(v))+1)
	e.b = append(e.b, v...)
}

func (e *recEncoder) str(v string) { e.bytes([]byte(v)) }

type recDecoder struct {
	b      []byte
	bucket []byte
	key    []byte
	err    error
}

func newDecoder(bucket, key, v []byte) *recDecoder {
	d := &recDecoder{b: v, bucket: bucket, key: key}
	if len(v) == 0 {
		d.fail("empty")
	} else if v[0] != recordVersion {
		d.fail(fmt.Sprintf("unknown version %d", v[0]))
	} else {
		d.b = v[1:]
	}
	return d
}

func (d *recDecoder) fail(reason string) {
	if d.err == nil {
		d.err = &CorruptError{Bucket: string(d.bucket), Key: append([]byte(nil), d.key...), Reason: reason}
	}
	d.b = nil
}

func (d *recDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *recDecoder) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

func (d *recDecoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *recDecoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *recDecoder) i64() int64 { return int64(d.u64()) }

// fixed copies the next n bytes into out.
func (d *recDecoder) fixed(out []byte) {
	if v := d.take(len(out)); v != nil {
		copy(out, v)
	}
}

func (d *recDecoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, w := binary.Uvarint(d.b)
	if w <= 0 {
		d.fail("bad length")
		return nil
	}
	d.b = d.b[w:]
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.b)) {
		d.fail("truncated")
		return nil
	}
	v := d.take(int(n - 1))
	if len(v) == 0 {
		// An empty value reads back as nil, as sqlstore's empty blobs do
		// through database/sql on SQLite.
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (d *recDecoder) str() string { return string(d.bytes()) }

// end reports the first error, or trailing bytes.
func (d *recDecoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// deviceRecord is one row of whatsmeow_device.
type deviceRecord struct {
	seq                uint64 // first-insert order, SQLite's rowid
	jid                string
	lid                string
	registrationID     uint32
	noiseKey           [32]byte
	identityKey        [32]byte
	signedPreKey       [32]byte
	signedPreKeyID     uint32
	signedPreKeySig    [64]byte
	advKey             []byte
	advDetails         []byte
	advAccountSig      []byte
	advAccountSigKey   []byte
	advDeviceSig       []byte
	platform           string
	businessName       string
	pushName           string
	facebookUUID       uuid.UUID
	lidMigrationTS     int64
	companionMetaNonce string
}

func (r *deviceRecord) encode() []byte {
	e := newRecord()
	e.u64(r.seq)
	e.str(r.lid)
	e.u32(r.registrationID)
	e.fixed(r.noiseKey[:])
	e.fixed(r.identityKey[:])
	e.fixed(r.signedPreKey[:])
	e.u32(r.signedPreKeyID)
	e.fixed(r.signedPreKeySig[:])
	e.bytes(r.advKey)
	e.bytes(r.advDetails)
	e.bytes(r.advAccountSig)
	e.bytes(r.advAccountSigKey)
	e.bytes(r.advDeviceSig)
	e.str(r.platform)
	e.str(r.businessName)
	e.str(r.pushName)
	e.fixed(r.facebookUUID[:])
	e.i64(r.lidMigrationTS)
	e.str(r.companionMetaNonce)
	return e.b
}

func decodeDevice(k, v []byte) (*deviceRecord, error) {
	d := newDecoder(bktDevice, k, v)
	r := &deviceRecord{jid: string(k)}
	r.seq = d.u64()
	r.lid = d.str()
	r.registrationID = d.u32()
	d.fixed(r.noiseKey[:])
	d.fixed(r.identityKey[:])
	d.fixed(r.signedPreKey[:])
	r.signedPreKeyID = d.u32()
	d.fixed(r.signedPreKeySig[:])
	r.advKey = d.bytes()
	r.advDetails = d.bytes()
	r.advAccountSig = d.bytes()
	r.advAccountSigKey = d.bytes()
	r.advDeviceSig = d.bytes()
	r.platform = d.str()
	r.businessName = d.str()
	r.pushName = d.str()
	d.fixed(r.facebookUUID[:])
	r.lidMigrationTS = d.i64()
	r.companionMetaNonce = d.str()
	if err := d.end(); err != nil {
		return nil, err
	}
	return r, nil
}

// encodeBlob and decodeBlob store one nullable byte string: sessions,
// sender keys, identities, MACs, secrets, salts.
func encodeBlob(v []byte) []byte {
	e := newRecord()
	e.bytes(v)
	return e.b
}

func decodeBlob(bucket, k, v []byte) ([]byte, error) {
	d := newDecoder(bucket, k, v)
	b := d.bytes()
	return b, d.end()
}

// decodeFixedBlob is decodeBlob for columns with a CHECK on their length.
func decodeFixedBlob(bucket, k, v []byte, n int) ([]byte, error) {
	b, err := decodeBlob(bucket, k, v)
	if err == nil && len(b) != n {
		err = &CorruptError{Bucket: string(bucket), Key: append([]byte(nil), k...), Reason: fmt.Sprintf("length %d, want %d", len(b), n)}
	}
	return b, err
}

type preKeyRecord struct {
	uploaded bool
	priv     [32]byte
}

func (r preKeyRecord) encode() []byte {
	e := newRecord()
	e.bool(r.uploaded)
	e.fixed(r.priv[:])
	return e.b
}

func decodePreKey(k, v []byte) (preKeyRecord, error) {
	var r preKeyRecord
	if len(k) != 4 {
		return r, &CorruptError{Bucket: string(bktPreKey), Key: append([]byte(nil), k...), Reason: "bad key"}
	}
	d := newDecoder(bktPreKey, k, v)
	r.uploaded = d.bool()
	d.fixed(r.priv[:])
	return r, d.end()
}

type syncKeyRecord struct {
	timestamp   int64
	data        []byte
	fingerprint []byte
}

func (r syncKeyRecord) encode() []byte {
	e := newRecord()
	e.i64(r.timestamp)
	e.bytes(r.data)
	e.bytes(r.fingerprint)
	return e.b
}

func decodeSyncKey(k, v []byte) (syncKeyRecord, error) {
	d := newDecoder(bktSyncKey, k, v)
	r := syncKeyRecord{timestamp: d.i64(), data: d.bytes(), fingerprint: d.bytes()}
	return r, d.end()
}

type versionRecord struct {
	version uint64
	hash    []byte
}

func (r versionRecord) encode() []byte {
	e := newRecord()
	e.u64(r.version)
	e.bytes(r.hash)
	return e.b
}

func decodeVersion(k, v []byte) (versionRecord, error) {
	d := newDecoder(bktASVersion, k, v)
	r := versionRecord{version: d.u64(), hash: d.bytes()}
	return r, d.end()
}

type contactRecord struct {
	first, full, push, business, redactedPhone string
}

func (r contactRecord) encode() []byte {
	e := newRecord()
	e.str(r.first)
	e.str(r.full)
	e.str(r.push)
	e.str(r.business)
	e.str(r.redactedPhone)
	return e.b
}

func decodeContact(k, v []byte) (contactRecord, error) {
	d := newDecoder(bktContact, k, v)
	r := contactRecord{first: d.str(), full: d.str(), push: d.str(), business: d.str(), redactedPhone: d.str()}
	return r, d.end()
}

type chatSettingsRecord struct {
	mutedUntil       int64
	pinned, archived bool
}

func (r chatSettingsRecord) encode() []byte {
	e := newRecord()
	e.i64(r.mutedUntil)
	e.bool(r.pinned)
	e.bool(r.archived)
	return e.b
}

func decodeChatSettings(k, v []byte) (chatSettingsRecord, error) {
	d := newDecoder(bktChatSettings, k, v)
	r := chatSettingsRecord{mutedUntil: d.i64(), pinned: d.bool(), archived: d.bool()}
	return r, d.end()
}

type privacyTokenRecord struct {
	token           []byte
	timestamp       int64
	hasSenderTS     bool
	senderTimestamp int64
}

func (r privacyTokenRecord) encode() []byte {
	e := newRecord()
	e.bytes(r.token)
	e.i64(r.timestamp)
	e.bool(r.hasSenderTS)
	e.i64(r.senderTimestamp)
	return e.b
}

func decodePrivacyToken(k, v []byte) (privacyTokenRecord, error) {
	d := newDecoder(bktPrivacyToken, k, v)
	r := privacyTokenRecord{token: d.bytes(), timestamp: d.i64(), hasSenderTS: d.bool(), senderTimestamp: d.i64()}
	return r, d.end()
}

type bufferedEventRecord struct {
	plaintext  []byte // nil after ClearBufferedEventPlaintext
	serverTS   int64  // seconds
	insertTSMS int64  // milliseconds
}

func (r bufferedEventRecord) encode() []byte {
	e := newRecord()
	e.bytes(r.plaintext)
	e.i64(r.serverTS)
	e.i64(r.insertTSMS)
	return e.b
}

func decodeBufferedEvent(k, v []byte) (bufferedEventRecord, error) {
	d := newDecoder(bktEventBuffer, k, v)
	r := bufferedEventRecord{plaintext: d.bytes(), serverTS: d.i64(), insertTSMS: d.i64()}
	return r, d.end()
}

type outgoingRecord struct {
	format      string
	plaintext   []byte
	timestampMS int64
}

func (r outgoingRecord) encode() []byte {
	e := newRecord()
	e.str(r.format)
	e.bytes(r.plaintext)
	e.i64(r.timestampMS)
	return e.b
}

func decodeOutgoing(k, v []byte) (outgoingRecord, error) {
	d := newDecoder(bktRetryBuffer, k, v)
	r := outgoingRecord{format: d.str(), plaintext: d.bytes(), timestampMS: d.i64()}
	return r, d.end()
}

// Composite keys: every variable-length part but the last is prefixed with
// its uvarint length, so a prefix scan over the first parts cannot run into
// a longer first part ("ab"+"c" vs "a"+"bc").

func lp(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// splitLP reads one length-prefixed part off k.
func splitLP(k []byte) (part, rest []byte, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n > uint64(len(k)-w) {
		return nil, nil, false
	}
	return k[w : w+int(n)], k[w+int(n):], true
}

func u32Key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
