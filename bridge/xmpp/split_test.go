package xmpp

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// partMark is the "(i/n)" line splitMessage ends every part with.
var partMark = regexp.MustCompile(`\n\((\d+)/(\d+)\)$`)

// joinParts checks that bodies are orig split by splitMessage: each ends
// with its "(i/n)" line, and together, without those, they hold the text
// of orig in order. White space and backticks are left out of the
// comparison: a cut drops the space or line break it is made at, and a
// preformatted block cut in two is closed and opened again.
func joinParts(t *testing.T, orig string, bodies []string) {
	t.Helper()
	strip := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '`' || r == ' ' || r == '\n' || r == '\t' || r == '\r' {
				return -1
			}
			return r
		}, s)
	}
	var joined strings.Builder
	for i, b := range bodies {
		m := partMark.FindStringSubmatch(b)
		if m == nil || m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(len(bodies)) {
			t.Fatalf("part %d of %d ends %q, want its (i/n) line", i+1, len(bodies), b[max(0, len(b)-20):])
		}
		joined.WriteString(strip(b[:len(b)-len(m[0])]))
	}
	if got, want := joined.String(), strip(orig); got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the parts differ from the text at byte %d (of %d): %q, want %q", i, len(want), head(got[i:]), head(want[i:]))
	}
}

func head(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

func TestSplitMessage(t *testing.T) {
	line := func(i int) string {
		return fmt.Sprintf("line %04d: *bold* & _italic_ <tag> \"quoted\" café 👍🏽", i)
	}
	var lines []string
	for i := range 3000 {
		lines = append(lines, line(i))
	}
	manyLines := strings.Join(lines, "\n")
	code := "*Alice*: look\n```go\n" + strings.Repeat("fmt.Println(\"x\") // 1 < 2 && 3 > 2\n", 3000) + "```\nafter the code"
	oneLine := strings.Repeat("word ", 40000)
	noSpaces := strings.Repeat("👨‍👩‍👧‍👦👍🏽é", 20000) // é: e and a combining accent
	escapes := strings.Repeat("&", 100000)
	for _, tc := range []struct {
		name  string
		m     Message
		limit int
	}{
		{"lines", Message{ID: "wx-1", To: "o@x", Body: "*Alice*: " + manyLines, Markable: true}, defaultStanzaLimit},
		{"preformatted block cut", Message{ID: "wx-2", To: "o@x", Body: code}, defaultStanzaLimit},
		{"one long line", Message{ID: "wx-3", To: "o@x", Body: oneLine}, 20000},
		{"no spaces, clusters", Message{ID: "wx-4", To: "o@x", Body: noSpaces}, 20000},
		{"escaped five times", Message{ID: "wx-5", To: "o@x", Body: escapes}, defaultStanzaLimit},
		{"reply with a long quote", Message{ID: "wx-6", To: "o@x", Body: manyLines, Reply: &Reply{To: "b@x", ID: "r1"}, Quote: manyLines}, defaultStanzaLimit},
		{"correction", Message{ID: "wx-7", To: "o@x", Body: manyLines, Replace: "wx-1"}, defaultStanzaLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := splitMessage(tc.m, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) < 2 {
				t.Fatalf("%d part(s), want the message split", len(parts))
			}
			var bodies []string
			for i, p := range parts {
				b, err := EncodeMessage(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > tc.limit {
					t.Errorf("part %d is %d bytes, over the limit %d", i+1, len(b), tc.limit)
				}
				if want := tc.m.ID; i > 0 {
					want = fmt.Sprintf("%s-%d", tc.m.ID, i+1)
					if p.ID != want || p.Reply != nil || p.Replace != "" || p.Markable {
						t.Errorf("part %d: id %s (want %s), reply %v, replace %q, markable %v: only the first is the message itself", i+1, p.ID, want, p.Reply, p.Replace, p.Markable)
					}
				} else if p.ID != want || p.Replace != tc.m.Replace || p.Markable != tc.m.Markable || (p.Reply == nil) != (tc.m.Reply == nil) {
					t.Errorf("first part %+v lost what the message was", p)
				}
				if i > 0 {
					r, _ := utf8.DecodeRuneInString(strings.TrimPrefix(p.Body, "```\n"))
					if clings(r) {
						t.Errorf("part %d starts with %U, which belongs to the character before", i+1, r)
					}
				}
				bodies = append(bodies, p.Body)
			}
			joinParts(t, Clean(tc.m.Body), bodies)
			if tc.name == "preformatted block cut" {
				if !strings.HasSuffix(partMark.ReplaceAllString(bodies[0], ""), "\n```") || !strings.HasPrefix(bodies[1], "```\n") {
					t.Errorf("a cut inside a preformatted block: first part ends %q, second starts %q; want it closed and opened again",
						bodies[0][len(bodies[0])-20:], head(bodies[1]))
				}
			}
			if tc.m.Reply != nil && !strings.Contains(parts[0].Quote, "…") {
				t.Errorf("the quote was not shortened")
			}
		})
	}
	// What fits stays one message, untouched.
	m := Message{ID: "wx-8", To: "o@x", Body: "short"}
	if parts, err := splitMessage(m, defaultStanzaLimit); err != nil || len(parts) != 1 || parts[0] != m {
		t.Errorf("a short message: %v, %v", parts, err)
	}
	// What has no text to split cannot be made to fit.
	big := Message{ID: "wx-9", To: "o@x", Reactions: &Reactions{ID: "x", Emojis: strings.Split(strings.Repeat("👍", 30000), "")}}
	if _, err := splitMessage(big, defaultStanzaLimit); !errors.Is(err, errTooLarge) {
		t.Errorf("oversized reactions: %v, want errTooLarge", err)
	}
}

// TestResplit: an item queued whole is split from its stanza as
// splitMessage would have split the message, the reply included.
func TestResplit(t *testing.T) {
	body := strings.Repeat("a line of text\n", 10000)
	m := Message{ID: "wx-1", To: "o@x", Body: body, Reply: &Reply{To: "b@x", ID: "r1"}, Quote: "the quoted\nmessage", Markable: true}
	stanza, err := EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := resplit(stanza, 50000)
	if !ok {
		t.Fatal("resplit failed")
	}
	want, err := splitMessage(m, 50000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d parts, want %d", len(got), len(want))
	}
	for i := range want {
		b, _ := EncodeMessage(want[i])
		if string(got[i]) != string(b) {
			t.Errorf("part %d:\n got %.200s\nwant %.200s", i+1, got[i], b)
		}
	}
	if _, ok := resplit([]byte("<iq type='get' id='1'/>"), 1000); ok {
		t.Error("resplit an iq")
	}
}

// FuzzSplit: any text, at any limit splitMessage accepts, comes out in
// parts that fit and that hold the whole text in order.
func FuzzSplit(f *testing.F) {
	f.Add("hello\nworld ```\n``` x", 9000)
	f.Add(strings.Repeat("ab\ncd ", 3000), 8000)
	f.Fuzz(func(t *testing.T, body string, limit int) {
		if limit < 1000 || limit > 1<<20 {
			return
		}
		body = strings.Repeat(body, 1+6000/(len(body)+1))
		parts, err := splitMessage(Message{ID: "wx-f", To: "o@x", Body: body}, limit)
		if errors.Is(err, errTooLarge) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) == 1 {
			return
		}
		var bodies []string
		for i, p := range parts {
			b, _ := EncodeMessage(p)
			if len(b) > limit {
				t.Fatalf("part %d is %d bytes, limit %d", i+1, len(b), limit)
			}
			bodies = append(bodies, p.Body)
		}
		joinParts(t, Clean(body), bodies)
	})
}
