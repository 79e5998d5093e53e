package bridge_test

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayout keeps the layout true: package bridge (the domain and the
// core) imports only the standard library, and no adapter imports another
// adapter (they speak the domain's types; cmd/waxmpp wires them). Test
// files may (harnesses); build tags are tried both ways.
func TestLayout(t *testing.T) {
	adapters := []string{"whatsapp", "xmpp", "store", "simwa"}
	for _, tags := range [][]string{nil, {"simwa"}} {
		ctx := build.Default
		ctx.BuildTags = tags
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") || first == "waxmpp" {
				t.Errorf("package bridge (tags %v) imports %s: only the standard library is allowed", tags, imp)
			}
		}
		dirs, err := os.ReadDir(".")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if !d.IsDir() || d.Name() == "testdata" {
				continue
			}
			pkg, err := ctx.ImportDir(filepath.Join(".", d.Name()), 0)
			if _, none := err.(*build.NoGoError); none {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			for _, imp := range pkg.Imports {
				sub, ok := strings.CutPrefix(imp, "waxmpp/bridge/")
				if ok && slices.Contains(adapters, sub) && slices.Contains(adapters, d.Name()) {
					t.Errorf("adapter bridge/%s (tags %v) imports the adapter %s", d.Name(), tags, imp)
				}
			}
		}
	}
}
