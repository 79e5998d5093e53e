package simwa

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"waxmpp/bridge"
)

// start runs a simulator on a temp socket with an unbuffered events
// channel, as a core with no buffer would see it.
func start(t *testing.T) (*Sim, chan bridge.Event, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "sim.sock")
	events := make(chan bridge.Event)
	s, err := New(Config{Socket: sock, Events: events, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if ev := <-events; !equalEvents(ev, &bridge.Status{State: bridge.Connected}) {
		t.Fatalf("first event %#v, want Status connected", ev)
	}
	return s, events, sock
}

func dial(t *testing.T, sock string) *Client {
	t.Helper()
	c, err := Dial(sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestInjectWaitsForTheCore: the reply to an event comes only once the
// channel took it, so events reach the core in request order.
func TestInjectWaitsForTheCore(t *testing.T) {
	_, events, sock := start(t)
	c := dial(t, sock)
	replied := make(chan error, 1)
	go func() {
		_, err := c.Raw([]byte(`{"op":"event","event":{"type":"message","chat":"491701234567@s.whatsapp.net","id":"M1","text":"hi","push_name":"Alice"}}`))
		replied <- err
	}()
	select {
	case <-replied:
		t.Fatal("replied before the core took the event")
	case <-time.After(100 * time.Millisecond):
	}
	ev := <-events
	if err := <-replied; err != nil {
		t.Fatal(err)
	}
	if m, ok := ev.(*bridge.Message); !ok || m.Text != "hi" || m.Ref.ID != "M1" {
		t.Fatalf("got %#v", ev)
	}

	// A batch with one bad event sends none.
	rep, err := c.Raw([]byte(`{"op":"events","id":"b","events":[{"type":"typing","chat":"c"},{"type":"status"}]}`))
	if err != nil || rep.OK || !strings.Contains(rep.Error, `event 1 (status): "state" is required`) || string(rep.ID) != `"b"` {
		t.Fatalf("bad batch: %+v %v", rep, err)
	}
	select {
	case ev := <-events:
		t.Fatalf("a bad batch sent %#v", ev)
	default:
	}
}

func TestActionsAndScripts(t *testing.T) {
	s, _, sock := start(t)
	c := dial(t, sock)
	ctx := t.Context()
	chat := bridge.ChatID("491701234567@s.whatsapp.net")

	reply := &bridge.MsgRef{Chat: chat, Sender: bridge.UserID(chat), ID: "M1"}
	ref, at, err := s.SendText(ctx, chat, "hello", bridge.SendOptions{ReplyTo: reply, QuotedText: "hi"})
	if err != nil || !strings.HasPrefix(ref.ID, "3EB0") || !ref.FromMe || !at.Equal(t0) {
		t.Fatalf("SendText = %+v %v %v", ref, at, err)
	}
	acts, err := c.Actions(1, time.Second)
	if err != nil || len(acts) != 1 {
		t.Fatalf("actions %+v %v", acts, err)
	}
	a := acts[0]
	if a.Type != "send_text" || a.Seq != 1 || a.Text != "hello" || a.ID != ref.ID || a.ReplyTo.ID != "M1" || a.QuotedText != "hi" || a.Boot != s.Boot() {
		t.Fatalf("action %+v", a)
	}

	// The cursor moved: nothing new, and a wait times out.
	if acts, err := c.Actions(0, 0); err != nil || len(acts) != 0 {
		t.Fatalf("second read %+v %v", acts, err)
	}
	if _, err := c.Actions(1, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timeout: 0 of 1") {
		t.Fatalf("wait: %v", err)
	}

	// Scripted failures, used up after times.
	if err := c.Script(Rule{Action: "edit", Error: "edit_window", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Script(Rule{Action: "send_text", TextContains: "fail", Error: "network down"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Edit(ctx, ref, "x"); !errors.Is(err, bridge.ErrEditWindow) {
		t.Fatalf("scripted edit: %v", err)
	}
	if err := s.Edit(ctx, ref, "y"); err != nil {
		t.Fatalf("edit after the rule was used up: %v", err)
	}
	if _, _, err := s.SendText(ctx, chat, "please fail", bridge.SendOptions{}); err == nil || !strings.Contains(err.Error(), "network down") {
		t.Fatalf("scripted send: %v", err)
	}
	f := false
	c.Script(Rule{Action: "lookup", Phone: "4915550000", Found: &f})
	if _, ok, err := s.Lookup(ctx, "+4915550000"); ok || err != nil {
		t.Fatalf("scripted lookup: %v %v", ok, err)
	}
	if u, ok, err := s.Lookup(ctx, "+491701234567"); !ok || err != nil || u != "491701234567@s.whatsapp.net" {
		t.Fatalf("default lookup: %v %v %v", u, ok, err)
	}
	acts, err = c.Actions(5, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		got = append(got, a.Type+":"+a.Error)
	}
	want := "edit:edit_window edit: send_text:whatsapp (simulated): network down lookup: lookup:"
	if strings.Join(got, " ") != want {
		t.Fatalf("actions %q, want %q", strings.Join(got, " "), want)
	}

	// The edit window is enforced on the simulator's own clock.
	s.now = func() time.Time { return t0.Add(21 * time.Minute) }
	if err := s.Edit(ctx, ref, "late"); !errors.Is(err, bridge.ErrEditWindow) {
		t.Fatalf("late edit: %v", err)
	}
}

// TestWatchSeesEverything: a watcher gets the backlog and then each action
// before the call returns.
func TestWatchSeesEverything(t *testing.T) {
	s, _, sock := start(t)
	ctx := t.Context()
	s.SetOnline(ctx, true)
	w, err := Watch(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if a := <-w.C; a.Type != "set_online" || a.Online == nil || !*a.Online {
		t.Fatalf("backlog %+v", a)
	}
	for i := range 100 {
		s.SetTyping(ctx, "c@s.whatsapp.net", bridge.Composing)
		select {
		case a := <-w.C:
			if a.Seq != uint64(i+2) || a.State != "composing" {
				t.Fatalf("pushed %+v", a)
			}
		case <-time.After(time.Second):
			t.Fatal("the action was not pushed")
		}
	}
}

// TestPairing: logout unpairs and says so; pair answers with a code; an
// injected pair_result pairs again.
func TestPairing(t *testing.T) {
	s, events, sock := start(t)
	ctx := t.Context()
	if err := s.Pair(ctx, ""); !errors.Is(err, bridge.ErrAlreadyPaired) {
		t.Fatalf("pair while paired: %v", err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if st, ok := (<-events).(*bridge.Status); !ok || st.State != bridge.LoggedOut {
		t.Fatalf("after logout %#v", st)
	}
	if _, _, err := s.SendText(ctx, "c", "x", bridge.SendOptions{}); !errors.Is(err, bridge.ErrNotPaired) {
		t.Fatalf("send while unpaired: %v", err)
	}
	if err := s.Pair(ctx, "+491701234567"); err != nil {
		t.Fatal(err)
	}
	if pc, ok := (<-events).(*bridge.PairCode); !ok || pc.LinkCode == "" {
		t.Fatalf("after pair %#v", pc)
	}
	c := dial(t, sock)
	go func() { <-events }()
	if _, err := c.Do(Request{Op: "event", Event: &Event{Type: "pair_result", OK: true, User: "491701234567@s.whatsapp.net"}}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(); err != nil || !st.Paired || st.PID != os.Getpid() {
		t.Fatalf("state %+v %v", st, err)
	}
}

// TestStaleSocket: a socket file left by a killed process is replaced; a
// live one is not.
func TestStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "sim.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if _, err := New(Config{Socket: sock, Events: make(chan bridge.Event)}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("live socket: %v", err)
	}
	ln.Close()
	s, err := New(Config{Socket: sock, Events: make(chan bridge.Event)})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s.ln.Close()
}

func TestGenerateAndDownload(t *testing.T) {
	s, events, sock := start(t)
	c := dial(t, sock)
	got := make(chan []bridge.Event)
	go func() {
		var evs []bridge.Event
		for range 2 + 1 + 4 + 1 {
			evs = append(evs, <-events)
		}
		got <- evs
	}()
	rep, err := c.Do(Request{Op: "generate", Gen: &Gen{Contacts: 2, Chats: 1, Messages: 4, Prefix: "L"}})
	if err != nil || rep.N != 7 {
		t.Fatalf("generate %+v %v", rep, err)
	}
	if _, err := c.Raw([]byte(`{"op":"event","event":{"type":"message","chat":"c@s.whatsapp.net","id":"I","kind":"image","media":{"handle":"h","data":"aGVsbG8="}}}`)); err != nil {
		t.Fatal(err)
	}
	evs := <-got
	if m := evs[6].(*bridge.Message); m.Ref.ID != "L3" || m.Text != "#3 generated" || m.Ref.Chat != "491000000000@s.whatsapp.net" {
		t.Fatalf("generated %#v", m)
	}
	path := filepath.Join(t.TempDir(), "dl")
	if _, err := s.Download(t.Context(), evs[7].(*bridge.Message).Media, path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "hello" {
		t.Fatalf("download %q", b)
	}
}

// TestWatchAfterHalfClose: a watcher that closed its sending side, as
// `echo '{"op":"watch"}' | socat …` does, still gets the actions.
func TestWatchAfterHalfClose(t *testing.T) {
	s, _, sock := start(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"op":"watch"}` + "\n"))
	c.(*net.UnixConn).CloseWrite()
	r := bufio.NewReader(c)
	if l, err := r.ReadString('\n'); err != nil || l != `{"ok":true}`+"\n" {
		t.Fatalf("watch reply %q %v", l, err)
	}
	time.Sleep(50 * time.Millisecond) // serve has seen the EOF
	s.SetOnline(t.Context(), true)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || !strings.Contains(l, `"type":"set_online"`) {
		t.Fatalf("pushed %q %v", l, err)
	}
}

// TestAcknowledgements: the core's acknowledgements reach a watcher that
// asked for them, as the events' wire form, and are counted.
func TestAcknowledgements(t *testing.T) {
	s, _, sock := start(t)
	w, err := WatchAll(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	plain, err := Watch(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ev := &bridge.Message{Ref: bridge.MsgRef{Chat: "c@s.whatsapp.net", Sender: "c@s.whatsapp.net", ID: "M1"}, Kind: bridge.Text, Text: "hi", Time: t0}
	s.Handled(ev)
	s.SetOnline(t.Context(), true)
	select {
	case h := <-w.Handled:
		if h.Type != "message" || h.ID != "M1" || h.Text != "hi" {
			t.Fatalf("acknowledged %+v", h)
		}
	case <-time.After(time.Second):
		t.Fatal("no acknowledgement pushed")
	}
	if a := <-plain.C; a.Type != "set_online" {
		t.Fatalf("a plain watcher got %+v first, want the action only", a)
	}
	c := dial(t, sock)
	if st, err := c.State(); err != nil || st.Handled != 1 {
		t.Fatalf("state %+v %v, want handled 1", st, err)
	}
}

// TestChatPictures: picture events set, change and remove what
// ChatPicture returns, each told to the core as a PictureChange; a
// picture over bridge.MaxPicture is an error, a scripted failure too.
func TestChatPictures(t *testing.T) {
	s, events, sock := start(t)
	c := dial(t, sock)
	ctx := t.Context()
	const chat = "491701234567@s.whatsapp.net"
	big := filepath.Join(t.TempDir(), "big.jpg")
	if err := os.WriteFile(big, make([]byte, bridge.MaxPicture+1), 0o600); err != nil {
		t.Fatal(err)
	}
	step := func(line string, want bridge.Event) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			rep, err := c.Raw([]byte(line))
			if err == nil && !rep.OK {
				err = errors.New(rep.Error)
			}
			done <- err
		}()
		if ev := <-events; !equalEvents(ev, want) {
			t.Errorf("%s: event %#v, want %#v", line, ev, want)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	if p, err := s.ChatPicture(ctx, chat); p != nil || err != nil {
		t.Fatalf("before any: %v %v", p, err)
	}
	step(`{"op":"event","event":{"type":"picture","chat":"`+chat+`","id":"P1","media":{"mime_type":"image/jpeg","data":"/9j/4AAQ"}}}`, &bridge.PictureChange{Chat: chat, ID: "P1"})
	if p, err := s.ChatPicture(ctx, chat); err != nil || p == nil || p.ID != "P1" || p.Type != "image/jpeg" || string(p.Data) != "\xff\xd8\xff\xe0\x00\x10" {
		t.Fatalf("set: %+v %v", p, err)
	}
	step(`{"op":"event","event":{"type":"picture","chat":"`+chat+`","id":"P2"}}`, &bridge.PictureChange{Chat: chat, ID: "P2"})
	if p, err := s.ChatPicture(ctx, chat); err != nil || p == nil || p.ID != "P1" {
		t.Fatalf("announced without media: %+v %v", p, err)
	}
	if err := c.Script(Rule{Action: "chat_picture", Chat: chat, Error: "network down", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatPicture(ctx, chat); err == nil || !strings.Contains(err.Error(), "network down") {
		t.Fatalf("scripted: %v", err)
	}
	step(`{"op":"event","event":{"type":"picture","chat":"`+chat+`","id":"P3","media":{"file":"`+big+`"}}}`, &bridge.PictureChange{Chat: chat, ID: "P3"})
	if _, err := s.ChatPicture(ctx, chat); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("too large: %v", err)
	}
	step(`{"op":"event","event":{"type":"picture","chat":"`+chat+`","removed":true}}`, &bridge.PictureChange{Chat: chat, Removed: true})
	if p, err := s.ChatPicture(ctx, chat); p != nil || err != nil {
		t.Fatalf("removed: %v %v", p, err)
	}
	rep, err := c.Raw([]byte(`{"op":"event","event":{"type":"picture","chat":"` + chat + `","removed":true,"media":{"data":"AA=="}}}`))
	if err != nil || rep.OK {
		t.Fatalf("a removal with media: %+v %v", rep, err)
	}
	acts, err := c.Actions(6, 5*time.Second, "chat_picture")
	if err != nil || len(acts) != 6 {
		t.Fatalf("chat_picture actions %+v %v", acts, err)
	}
	if a := acts[1]; a.Chat != chat || a.ID != "P1" || a.Size != 6 {
		t.Errorf("action %+v", a)
	}
	if acts[2].ID != "P1" || !strings.Contains(acts[3].Error, "network down") || !strings.Contains(acts[4].Error, "over") || acts[5].Error != "" || acts[5].ID != "" {
		t.Errorf("actions %+v", acts)
	}
}

// TestActionLogBound: the log keeps the last maxLog actions (the texts
// copied); a client asking for actions it no longer holds gets an error,
// not the part that is left.
func TestActionLogBound(t *testing.T) {
	s, _, sock := start(t)
	ctx := t.Context()
	early := dial(t, sock)
	if _, err := early.Actions(0, 0); err != nil {
		t.Fatal(err)
	}
	for range maxLog + 10 {
		s.SetTyping(ctx, "c@s.whatsapp.net", bridge.Composing)
	}
	s.mu.Lock()
	n, last := len(s.actions), s.seq
	s.mu.Unlock()
	if n > maxLog {
		t.Fatalf("the log holds %d actions, bound %d", n, maxLog)
	}
	if _, err := early.Actions(0, 0); err == nil || !strings.Contains(err.Error(), "no longer holds") {
		t.Fatalf("asking past the log's start: %v", err)
	}
	late := dial(t, sock)
	since := last - 10
	rep, err := late.Do(Request{Op: "actions", Since: &since})
	if err != nil || len(rep.Actions) != 10 {
		t.Fatalf("the last 10: %d actions, %v", len(rep.Actions), err)
	}
}

// TestForget: op forget empties the log; what is recorded after it is
// answered, and a request for what it dropped gets the log's error.
func TestForget(t *testing.T) {
	s, _, sock := start(t)
	ctx := t.Context()
	c := dial(t, sock)
	for range 5 {
		s.SetTyping(ctx, "c@s.whatsapp.net", bridge.Composing)
	}
	rep, err := c.Do(Request{Op: "forget"})
	if err != nil || rep.N != 5 {
		t.Fatalf("forget: %+v, %v", rep, err)
	}
	s.mu.Lock()
	n := len(s.actions)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("the log holds %d actions after forget", n)
	}
	s.SetTyping(ctx, "d@s.whatsapp.net", bridge.Composing)
	since := uint64(5)
	rep, err = c.Do(Request{Op: "actions", Since: &since})
	if err != nil || len(rep.Actions) != 1 || rep.Actions[0].Chat != "d@s.whatsapp.net" || rep.Actions[0].Seq != 6 {
		t.Fatalf("after forget: %+v, %v", rep.Actions, err)
	}
	since = 0
	if _, err := c.Do(Request{Op: "actions", Since: &since}); err == nil || !strings.Contains(err.Error(), "no longer holds") {
		t.Fatalf("asking for what forget dropped: %v", err)
	}
}
