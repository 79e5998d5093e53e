package setup

import (
	"os"
	"path/filepath"
	"testing"
)

// TestChownTreeVanishing: a file that goes away while the state directory
// is given to the service's user is no error (the simulator's socket went
// between the walk's listing and its lchown, and setup could not finish);
// everything else is still given, and a missing directory is an error.
func TestChownTreeVanishing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "sim.sock", "z"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := os.Getuid(), os.Getgid() // any user may give files to itself
	var given []string
	lchown := func(p string, u, g int) error {
		if filepath.Base(p) == "sim.sock" {
			os.Remove(p) // gone in the moment between listing and lchown
		}
		if err := os.Lchown(p, u, g); err != nil {
			return err
		}
		given = append(given, filepath.Base(p))
		return nil
	}
	if err := walkChown(dir, uid, gid, lchown); err != nil {
		t.Fatalf("walkChown with a file vanishing: %v", err)
	}
	if want := []string{filepath.Base(dir), "a", "z"}; len(given) != 3 || given[0] != want[0] || given[1] != "a" || given[2] != "z" {
		t.Errorf("given %q, want %q", given, want)
	}
	if err := walkChown(filepath.Join(dir, "missing"), uid, gid, os.Lchown); err == nil {
		t.Error("a missing directory was given without an error")
	}
}
