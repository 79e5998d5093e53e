package web

import "testing"

// FuzzCode: the setup code's comparison never panics, ignores case,
// spaces and dashes, and an empty code matches nothing.
func FuzzCode(f *testing.F) {
	f.Add("K7WQ-3MXP-9TRD", "k7wq 3mxp 9trd")
	f.Add("", "")
	f.Add("my-own-code", "MYOWNCODE")
	f.Fuzz(func(t *testing.T, want, got string) {
		m := codeMatches(want, got)
		if normalize(want) == "" && m {
			t.Fatalf("an empty code matched %q", got)
		}
		if m != codeMatches(normalize(want), normalize(got)) {
			t.Fatalf("normalizing changed the verdict for %q, %q", want, got)
		}
	})
}
