package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"github.com/pelletier/go-toml/v2"
)

// header starts every file Write writes.
const header = `# waxmpp configuration. Keys left out have their defaults.
# This file may hold the bot account's password: keep it readable by waxmpp
# only (chmod 600, or 640 with waxmpp's group).

`

// Write writes c as a config file that Parse reads back as c: the keys
// whose values differ from Default, below a short header. It refuses a
// config that does not validate, so that what it writes is what run accepts.
//
// When PasswordFile is set, the password is left to that file and not
// written (after Load, Password holds what the file says); when it is the
// systemd credential, neither is written. Paths are written as they are:
// after Load they are absolute.
func Write(w io.Writer, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.XMPP.PasswordFile != "" {
		c.XMPP.Password = ""
	}
	if c.XMPP.credential {
		c.XMPP.PasswordFile = ""
	}
	zeroDefaults(reflect.ValueOf(&c).Elem(), reflect.ValueOf(Default()))
	var b bytes.Buffer
	b.WriteString(header)
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// zeroDefaults sets every field of v that equals the same field of def to
// its zero value, which the encoder leaves out (omitempty). A valid Config
// has no zero value where its default is not zero, so nothing it means is
// lost.
func zeroDefaults(v, def reflect.Value) {
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		f, d := v.Field(i), def.Field(i)
		if f.Kind() == reflect.Struct {
			zeroDefaults(f, d)
			continue
		}
		if f.Equal(d) {
			f.SetZero()
		}
	}
}

// WriteFile writes c (see Write) to path with mode perm, replacing the file
// atomically: through a temporary file in the same directory, fsynced and
// renamed over path, then the directory fsynced. A crash leaves the old
// file or the new one, never a part. The new file is owned by the caller;
// give it waxmpp's group afterwards where it needs one.
func WriteFile(path string, c Config, perm fs.FileMode) (err error) {
	var b bytes.Buffer
	if err := Write(&b, c); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("config: write %s: %w", path, err)
		}
	}()
	return ReplaceFile(path, b.Bytes(), perm, -1, -1)
}

// ReplaceFile replaces path with data, mode perm, owned by uid:gid (-1
// keeps the writer's; only root changes owners): through a temporary file
// in the same directory that has its owner and mode before it is renamed
// over path, fsynced, then the directory fsynced. A crash or a power cut
// leaves the old file or the new one, never a part, on ext4 and on a FAT
// boot partition. Where the file system has no modes (FAT: its mount
// options decide), the mode is left as created, 0600 or what the mount
// gives. Setup, the SD image's boot config and WriteFile share it.
func ReplaceFile(path string, data []byte, perm fs.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if os.Geteuid() == 0 && (uid >= 0 || gid >= 0) {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Chmod(perm); err != nil && !errors.Is(err, fs.ErrPermission) {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
