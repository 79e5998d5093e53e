// Package boottest boots the SD image (image/build.sh) under
// qemu-system-aarch64 -M virt and checks it from the outside, the way a
// person and their computer would see it: see boot_test.go, run by
// `make image-test` (build tag imagetest). The guest reaches the host only
// through QEMU user networking in restrict mode, with forwards bound to
// 127.0.0.1.
//
// This file and its neighbours hold the helpers: the image's partitions,
// reading and writing its FAT (mtools) and ext4 (debugfs) file systems
// without mounting anything, the VM, and mDNS messages.
package boottest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Partition is one MBR partition of a disk image.
type Partition struct {
	Type   byte
	Boot   bool
	Offset int64 // bytes from the start of the disk
	Size   int64 // bytes
}

// Partitions reads the MBR partition table of a disk image.
func Partitions(img string) ([]Partition, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read MBR of %s: %w", img, err)
	}
	return parseMBR(mbr)
}

func parseMBR(mbr []byte) ([]Partition, error) {
	if len(mbr) < 512 || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, errors.New("no MBR boot signature")
	}
	var parts []Partition
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		if e[4] == 0 {
			continue
		}
		parts = append(parts, Partition{
			Type:   e[4],
			Boot:   e[0] == 0x80,
			Offset: int64(binary.LittleEndian.Uint32(e[8:])) * 512,
			Size:   int64(binary.LittleEndian.Uint32(e[12:])) * 512,
		})
	}
	return parts, nil
}

// Disk is a disk image with the image's layout: FAT boot partition first,
// ext4 root second.
type Disk struct {
	Path       string
	Boot, Root Partition
}

// OpenDisk reads the partition table of img.
func OpenDisk(img string) (*Disk, error) {
	parts, err := Partitions(img)
	if err != nil {
		return nil, err
	}
	if len(parts) != 2 {
		return nil, fmt.Errorf("%s has %d partitions, want 2 (boot, root)", img, len(parts))
	}
	return &Disk{Path: img, Boot: parts[0], Root: parts[1]}, nil
}

func run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (d *Disk) fat() string { return fmt.Sprintf("%s@@%d", d.Path, d.Boot.Offset) }

// ReadBoot returns a file of the boot partition ("waxmpp.txt").
func (d *Disk) ReadBoot(name string) ([]byte, error) {
	return run("mcopy", "-n", "-i", d.fat(), "::"+name, "-")
}

// BootFiles lists the boot partition's top directory.
func (d *Disk) BootFiles() ([]string, error) {
	out, err := run("mdir", "-b", "-i", d.fat(), "::")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		names = append(names, strings.TrimPrefix(strings.TrimSpace(l), "::/"))
	}
	return names, nil
}

// WriteBoot replaces a file on the boot partition.
func (d *Disk) WriteBoot(name string, data []byte) error {
	tmp, err := os.CreateTemp("", "boot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	_, err = run("mcopy", "-o", "-i", d.fat(), tmp.Name(), "::"+name)
	return err
}

func (d *Disk) ext4() string { return fmt.Sprintf("%s?offset=%d", d.Path, d.Root.Offset) }

// ReadRoot returns a file of the root file system, or an error wrapping
// os.ErrNotExist.
func (d *Disk) ReadRoot(path string) ([]byte, error) {
	if _, err := d.StatRoot(path); err != nil {
		return nil, err
	}
	return run("debugfs", "-R", "cat "+path, d.ext4())
}

// StatRoot returns debugfs's stat of a path of the root file system.
func (d *Disk) StatRoot(path string) (string, error) {
	out, err := run("debugfs", "-R", "stat "+path, d.ext4())
	if err != nil {
		return "", err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return "", fmt.Errorf("%s: %w", path, os.ErrNotExist)
	}
	return string(out), nil
}

// DumpRoot copies a directory of the root file system, with everything in
// it, into dest (which must exist): dest/BASE.
func (d *Disk) DumpRoot(dir, dest string) error {
	out, err := run("debugfs", "-R", "rdump "+dir+" "+dest, d.ext4())
	if err != nil {
		return fmt.Errorf("debugfs rdump %s: %w: %s", dir, err, out)
	}
	return nil
}

// ListRoot lists a directory of the root file system.
func (d *Disk) ListRoot(dir string) ([]string, error) {
	out, err := run("debugfs", "-R", "ls -p "+dir, d.ext4())
	if err != nil {
		return nil, err
	}
	// Lines look like /inode/mode/uid/gid/name/size/.
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, "/")
		if len(f) >= 7 && f[5] != "." && f[5] != ".." {
			names = append(names, f[5])
		}
	}
	return names, nil
}

// WriteRoot replaces a file of the root file system (owner root, mode
// perm).
func (d *Disk) WriteRoot(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp("", "root-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// debugfs's write refuses an existing name: remove it first.
	script := fmt.Sprintf("rm %s\nwrite %s %s\n", path, tmp.Name(), path)
	cmd := exec.Command("debugfs", "-w", "-f", "-", d.ext4())
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("debugfs write %s: %w: %s", path, err, out)
	}
	if _, err := d.StatRoot(path); err != nil {
		return fmt.Errorf("debugfs write %s: %w: %s", path, err, out)
	}
	return nil
}
