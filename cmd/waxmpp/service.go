package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"waxmpp/bridge"
	"waxmpp/bridge/config"
	"waxmpp/bridge/xmpp"
)

// The service contract with systemd (systemd/waxmpp.service, Type=notify):
//
//   - READY=1 once the state file is open, both sides are started and the
//     core's loop has answered once. Not once connected: the bridge is up
//     without a network too, and STATUS= says what it waits for.
//   - STATUS= always tells the health in a few words ("WhatsApp connected ·
//     XMPP connected · 0 queued"), and on exit why ("not configured: run
//     sudo waxmpp setup"); systemctl status shows it.
//   - WATCHDOG=1 only after the core's loop answered a Health request: a
//     ticker of its own would keep a hung core alive. With WatchdogSec=
//     systemd kills a loop that stays stuck that long, and restarts it.
//   - STOPPING=1 when a stop begins.
//
// None of this touches the disk: sd_notify is a datagram to systemd.

// notifyState sends state to systemd (sd_notify). Without $NOTIFY_SOCKET
// it does nothing.
func (m *Main) notifyState(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil && m.log != nil {
		m.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// watchdogInterval is how long systemd waits for WATCHDOG=1, from
// $WATCHDOG_USEC when $WATCHDOG_PID is this process (or unset); 0 if the
// watchdog is off.
func watchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// statusEvery is how often the health is asked, so that STATUS= follows
// the connections; with a watchdog, at least every third of it. It costs a
// wakeup and a read of the store, never a write.
const statusEvery = 5 * time.Second

// supervise tells systemd the core's health until ctx ends. Each round asks
// the core's loop (health), then sends READY=1 (the first time), WATCHDOG=1
// (when watchdog > 0) and STATUS= (when it changed). A round waits at most
// its period for the answer; a loop that does not answer gets no WATCHDOG=1
// and a STATUS= saying so. Rounds come every statusEvery, with a watchdog
// at least every third of it, so a core that answers again within the
// watchdog after one slow call is not killed.
func supervise(ctx context.Context, health func(context.Context) (bridge.Health, error), watchdog time.Duration, notify func(string), log *slog.Logger) {
	every := statusEvery
	if watchdog > 0 {
		every = min(every, watchdog/3)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	ready, status := false, ""
	var lastAnswer time.Time
	for {
		actx, cancel := context.WithTimeout(ctx, every)
		h, err := health(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		var state []string
		now := time.Now()
		st := ""
		switch {
		case err == nil:
			if !ready {
				state = append(state, "READY=1")
				ready = true
			} else if !lastAnswer.IsZero() && now.Sub(lastAnswer) > 2*every {
				log.Info("the core answers again", "after", now.Sub(lastAnswer).Round(time.Second))
			}
			lastAnswer = now
			if watchdog > 0 {
				state = append(state, "WATCHDOG=1")
			}
			st = h.String()
		case lastAnswer.IsZero():
			st = "starting"
		default:
			silent := now.Sub(lastAnswer).Round(time.Second)
			st = fmt.Sprintf("the core has not answered for %s", silent)
			log.Warn("the core's loop does not answer", "for", silent, "watchdog", watchdog)
		}
		if st != status {
			state = append(state, "STATUS="+st)
			status = st
		}
		if len(state) > 0 {
			notify(strings.Join(state, "\n"))
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// stopStatus is the STATUS= of a `waxmpp run` that ends with err: why it
// stopped, and what to do where someone can.
func stopStatus(err error) string {
	var ce *config.Error
	switch {
	case err == nil:
		return "stopped"
	case errors.Is(err, config.ErrNotConfigured):
		return "not configured: run sudo waxmpp setup"
	case errors.Is(err, xmpp.ErrAuth):
		return "the XMPP server refused the bot's password: run sudo waxmpp setup"
	case errors.As(err, &ce):
		return "invalid config: " + firstLine(ce.Error()) + " (journalctl -u waxmpp)"
	default:
		return "failed: " + firstLine(err.Error())
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
