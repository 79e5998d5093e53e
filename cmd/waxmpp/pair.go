package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mdp/qrterminal/v3"
	"golang.org/x/term"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/store"
	"waxmpp/bridge/whatsapp"
)

// pairer is what `waxmpp pair` needs of the WhatsApp adapter; tests
// replace newPairer, since WhatsApp's servers cannot be reached from tests.
type pairer interface {
	Run(ctx context.Context) error
	Pair(ctx context.Context, phone string) error
	// Handled takes events off the adapter's durable inbox: the pairing's
	// own (codes, the result) are for this terminal. What arrives after
	// the link (names, identities) stays for the core at the next start.
	Handled(ev bridge.Event)
	// InitialSync waits until the first sync after linking is done
	// (offline messages, app state, history), with a line per step.
	InitialSync(ctx context.Context, progress func(string)) error
}

var newPairer = func(ctx context.Context, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (pairer, error) {
	return whatsapp.New(ctx, whatsappConfig(db, log, events))
}

// whatsappConfig wires the WhatsApp adapter to the state file: the store
// implements the adapter's interfaces.
func whatsappConfig(db *store.DB, log *slog.Logger, events chan<- bridge.Event) whatsapp.Config {
	return whatsapp.Config{
		Devices:  db.Devices(whatsapp.Logger(log.With("component", "whatsmeow-store"))),
		Inbox:    db.Queue("whatsapp-in"),
		History:  db.Queue("whatsapp-history"),
		Settings: db,
		TempDir:  filepath.Dir(db.Path()),
		Log:      log,
		Events:   events,
	}
}

// errPairFailed is a pairing that ended without a link; its message is
// what WhatsApp (or the adapter) said.
type errPairFailed struct{ msg string }

func (e *errPairFailed) Error() string { return "pairing failed: " + e.msg }

// runPair links waxmpp to a WhatsApp account in the terminal: with phone
// "" it draws QR codes to scan (redrawn as WhatsApp rotates them), else it
// shows an 8-character link code for that number. It needs the state file
// to itself: stop the daemon first (or use /pair in the bot chat).
func (m *Main) runPair(ctx context.Context, phone string) error {
	if phone != "" {
		if _, err := whatsapp.NormalizePhone(phone); err != nil {
			return &usageError{fmt.Sprintf("pair --phone %q: %v", phone, err)}
		}
	}
	// Before setup has named the accounts too: [store] as the file sets it.
	st, err := config.LoadStore(m.ConfigPath)
	if err != nil {
		return err
	}
	db, err := store.Open(st.Path, store.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("pair: waxmpp is running and holds %s. Either send /pair to the bot in your XMPP client, or stop it (systemctl stop waxmpp) and run this again", st.Path)
	} else if err != nil {
		return err
	}
	defer db.Close()

	// Only warnings and errors: the terminal is for the QR code.
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// events: the adapter's own FIFO buffers; this loop drains it.
	events := make(chan bridge.Event, 16)
	wa, err := newPairer(ctx, db, log, events)
	if err != nil {
		return err
	}
	runDone := make(chan error, 1)
	go func() { runDone <- wa.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	if err := wa.Pair(ctx, phone); errors.Is(err, bridge.ErrAlreadyPaired) {
		return fmt.Errorf("pair: waxmpp is already linked to WhatsApp. To link another account, send /logout to the bot first (or unlink it on the phone: Settings → Linked devices)")
	} else if err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	tty := false
	if f, ok := m.Stdout.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	n := 0
	var linked *bridge.PairResult
	progress := make(chan string, 16)
	synced := make(chan error, 1)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runDone:
			runDone <- err
			return fmt.Errorf("pair: the WhatsApp connection stopped: %v", err)
		case line := <-progress:
			fmt.Fprintln(m.Stdout, line)
		case err := <-synced:
			for len(progress) > 0 {
				fmt.Fprintln(m.Stdout, <-progress)
			}
			if err != nil {
				return fmt.Errorf("pair: %w", err)
			}
			return m.pairDone(linked)
		case ev := <-events:
			if linked == nil {
				wa.Handled(ev)
			}
			switch e := ev.(type) {
			case *bridge.PairCode:
				n++
				m.showCode(e, n, tty)
			case *bridge.PairResult:
				if !e.OK {
					return &errPairFailed{e.Err}
				}
				linked = e
				fmt.Fprintln(m.Stdout, "\nLinked. Receiving your chats and contacts from the phone (this takes a minute or two)…")
				// The phone sends the first sync now; waxmpp stays until
				// it has arrived (the adapter keeps what arrives for the
				// bridge, which gets it at its next start).
				go func() {
					synced <- wa.InitialSync(ctx, func(line string) {
						select {
						case progress <- line:
						case <-ctx.Done():
						}
					})
				}()
			case *bridge.Status:
				switch e.State {
				case bridge.LoggedOut, bridge.Banned:
					if linked != nil {
						return &errPairFailed{e.Reason}
					}
				case bridge.Outdated, bridge.TempBanned:
					fmt.Fprintln(m.Stdout, e.Reason)
				}
			}
		}
	}
}

func (m *Main) pairDone(r *bridge.PairResult) error {
	who := string(r.ID)
	if num, _, ok := cutUser(who); ok {
		who = "+" + num
	}
	if r.Name != "" {
		who += " (" + r.Name + ")"
	}
	_, err := fmt.Fprintf(m.Stdout, "Success: waxmpp is linked to WhatsApp account %s.\nStart the bridge now: systemctl start waxmpp\n", who)
	return err
}

// cutUser splits "491701234567@s.whatsapp.net" at the '@'.
func cutUser(jid string) (user, server string, ok bool) {
	for i := 0; i < len(jid); i++ {
		if jid[i] == '@' {
			return jid[:i], jid[i+1:], i > 0
		}
	}
	return "", "", false
}

// showCode draws a QR code (clearing the terminal first when it is one) or
// prints a link code, with how long it stays valid.
func (m *Main) showCode(c *bridge.PairCode, n int, tty bool) {
	w := m.Stdout
	left := time.Until(c.Expires).Round(time.Second)
	if c.LinkCode != "" {
		fmt.Fprintf(w, "\nYour link code: %s\n\nOn your phone: WhatsApp → Settings → Linked devices → Link a device →\n\"Link with phone number instead\", then type the code. It is valid for about %s.\n", c.LinkCode, left)
		return
	}
	if tty {
		io.WriteString(w, "\033[H\033[2J")
	}
	fmt.Fprintf(w, "Scan this QR code with WhatsApp on your phone: Settings → Linked devices → Link a device.\n\n")
	qrterminal.GenerateWithConfig(c.QR, qrterminal.Config{
		Level: qrterminal.L, Writer: w, HalfBlocks: true,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone: 2,
	})
	fmt.Fprintf(w, "\nCode %d, valid for %s; a new one follows. Ctrl-C stops.\n", n, left)
}
