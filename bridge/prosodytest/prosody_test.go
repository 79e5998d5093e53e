package prosodytest

import (
	"testing"
	"time"
)

// TestServerRoundTrip proves the harness itself: two accounts log in over
// STARTTLS with the test CA and exchange a message, also across a restart.
func TestServerRoundTrip(t *testing.T) {
	s := Start(t, Options{})
	owner := s.Dial(t, "owner")
	stranger := s.Dial(t, "stranger")
	stranger.Send("<message to='owner@" + Domain + "' type='chat' id='m1'><body>a &lt; b</body></message>")
	got := owner.Next(t, 5*time.Second, Messages)
	if got.Body() != "a < b" || got.Attr("id") != "m1" {
		t.Fatalf("got %s, want body %q id m1", got, "a < b")
	}
	s.Kill()
	s.Restart()
	o2 := s.Dial(t, "owner")
	if o2.JID == "" {
		t.Fatal("no JID after restart")
	}
}
