package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"waxmpp/bridge/qr"
	"waxmpp/setup"
	"waxmpp/setup/web"
)

// runSetupWeb serves the setup flow as a web page until it is done, then
// closes the page for good.
func (m *Main) runSetupWeb(ctx context.Context, f *setup.Flow, s setupFlags, codeFile string, log *slog.Logger) error {
	code, made, err := web.LoadCode(codeFile)
	if err != nil {
		return err
	}
	srv, err := web.New(ctx, web.Options{Flow: f, Code: code, Listen: s.listen, QR: qr.PNG, Log: log.With("component", "web")})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(s.listen)
	addrs := srv.Addrs()
	fmt.Fprintf(m.Stdout, "The setup page is open on this network:\n")
	if port == "80" && host != "" {
		fmt.Fprintf(m.Stdout, "  http://%s.local/\n", host)
	}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && !strings.HasPrefix(h, "127.") && h != "::1" {
			fmt.Fprintf(m.Stdout, "  http://%s/\n", a)
		}
	}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && (strings.HasPrefix(h, "127.") || h == "::1") {
			fmt.Fprintf(m.Stdout, "  http://%s/ (on this machine)\n", a)
			break
		}
	}
	if made {
		fmt.Fprintf(m.Stdout, "Setup code: %s (also in %s)\n", code, codeFile)
	} else {
		fmt.Fprintf(m.Stdout, "It asks for the setup code in %s.\n", codeFile)
	}
	if err := srv.Serve(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("setup stopped; the page is closed and nothing was changed")
		}
		return err
	}
	st := f.State()
	if st.Done != nil {
		fmt.Fprintf(m.Stdout, "Setup is done. %s\n", st.Done.Next)
	}
	return nil
}
