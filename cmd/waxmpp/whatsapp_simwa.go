//go:build simwa

package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"waxmpp/bridge"
	"waxmpp/bridge/simwa"
	"waxmpp/bridge/store"
)

// newWhatsApp, in a test build (-tags simwa), is the simulated WhatsApp
// network on the control socket sock, run's --simulator (go doc
// waxmpp/bridge/simwa). run serves the socket until ctx ends. Events go to
// events; a control request that injects one returns once the channel took
// it. A test build has no real WhatsApp: without --simulator it returns
// errNoWhatsApp, and the binary runs the XMPP side alone (as the
// in-process tests of main do).
func newWhatsApp(ctx context.Context, sock string, db *store.DB, log *slog.Logger, events chan<- bridge.Event) (wa bridge.WhatsApp, run func(context.Context) error, err error) {
	if sock == "" {
		return nil, nil, fmt.Errorf("%w: this binary is a test build (-tags simwa) with only the simulated WhatsApp, and run has no --simulator", errNoWhatsApp)
	}
	log = log.With("component", "simwa")
	sim, err := simwa.New(simwa.Config{
		Socket: sock,
		Events: events,
		Log:    log,
	})
	if err != nil {
		return nil, nil, &usageError{fmt.Sprintf("run --simulator %s: %v", sock, err)}
	}
	log.Warn("using the simulated WhatsApp (test build)", "socket", sock, "boot", sim.Boot())
	return sim, sim.Run, nil
}

const simUsage = `  run --simulator SOCKET
                        (this test build) replace WhatsApp with the simulated
                        network, driven through SOCKET (go doc waxmpp/bridge/simwa)
`

func simFlag(fs *flag.FlagSet, sock *string) {
	fs.StringVar(sock, "simulator", "", "serve the simulated WhatsApp's control socket here")
}

// maxSocketPath is what fits in sockaddr_un.sun_path on Linux.
const maxSocketPath = 107

// checkSimulator returns what is wrong with --simulator's socket path, or "".
func checkSimulator(sock string) string {
	switch {
	case strings.ContainsRune(sock, 0):
		return fmt.Sprintf("%q contains a NUL byte; want a file name", sock)
	case len(sock) > maxSocketPath:
		return fmt.Sprintf("%q is longer than a Unix socket path may be (%d bytes); want a shorter path, such as \"/tmp/waxmpp-sim.sock\"", sock, maxSocketPath)
	}
	return ""
}
