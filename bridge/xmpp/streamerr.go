package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StreamError is a stream error the server closed the link with (RFC 6120
// §4.9): its condition tells what to do.
//
//   - conflict: another login took the bot's resource (a second instance,
//     the owner trying the bot's account in an app, a stale login). Coming
//     back at once would throw the other one out, and it us, for ever:
//     Run waits ConflictBackoff, counts it (Stats.Conflicts) and tells the
//     owner once, on the next link.
//   - see-other-host: the server names another; the next login goes
//     there, once.
//   - policy-violation: the server thinks we broke its rules, most likely
//     by sending too fast: the pace is halved and Run waits MaxBackoff;
//     unless it says a stanza was too big, which the outbox's guard deals
//     with (guard.go).
//   - system-shutdown and the rest: the usual backoff.
type StreamError struct {
	Condition string
	Text      string
	Host      string // see-other-host's address
	// App is an application-specific condition, e.g. Prosody's
	// stanza-too-big (urn:xmpp:errors) with policy-violation.
	App string
}

// tooBig reports whether the server closed the stream for a stanza's size
// (Prosody: policy-violation with stanza-too-big; ejabberd:
// policy-violation, "XML stanza is too big"), not for the bot's pace.
func (e *StreamError) tooBig() bool {
	t := strings.ToLower(e.Text)
	return e.App == "stanza-too-big" || strings.Contains(t, "too big") || strings.Contains(t, "too large")
}

func (e *StreamError) Error() string {
	s := "xmpp: the server closed the stream: " + e.Condition
	if e.Host != "" {
		s += " (" + e.Host + ")"
	}
	if e.Text != "" {
		s += fmt.Sprintf(" (%q)", e.Text)
	}
	return s
}

const nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"

// parseStreamError reads the <stream:error/> whose start tag was just read.
func parseStreamError(d *xml.Decoder, start xml.StartElement) error {
	var se struct {
		Children []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := d.DecodeElement(&se, &start); err != nil {
		return fmt.Errorf("xmpp: read stream error: %w", err)
	}
	e := &StreamError{}
	for _, c := range se.Children {
		switch {
		case c.XMLName.Space != nsStreams:
			if e.App == "" {
				e.App = c.XMLName.Local
			}
		case c.XMLName.Local == "text":
			e.Text = Clean(strings.TrimSpace(c.Text))
		case e.Condition == "":
			e.Condition = c.XMLName.Local
			if e.Condition == "see-other-host" {
				e.Host = Clean(strings.TrimSpace(c.Text))
			}
		}
	}
	if e.Condition == "" {
		e.Condition = "undefined-condition"
	}
	return e
}

// afterStreamError applies what a stream error calls for and returns how
// long Run waits at least before the next login.
func (s *Session) afterStreamError(err error) time.Duration {
	var se *StreamError
	if !errors.As(err, &se) {
		return 0
	}
	switch se.Condition {
	case "conflict":
		s.conflicts.Add(1)
		s.mu.Lock()
		s.conflicted = true
		s.mu.Unlock()
		return s.cfg.ConflictBackoff
	case "see-other-host":
		if se.Host != "" {
			s.mu.Lock()
			s.redirect = se.Host
			s.mu.Unlock()
		}
	case "policy-violation":
		if se.tooBig() {
			return 0 // about one stanza, which the guard deals with
		}
		s.pacer.rate = max(min(floorRate, s.pacer.ceiling), s.pacer.rate/2)
		return s.cfg.MaxBackoff
	}
	return 0
}

// tellConflict tells the owner, once per conflict, why the bot was away.
func (s *Session) tellConflict() {
	s.mu.Lock()
	told := !s.conflicted
	s.conflicted = false
	s.mu.Unlock()
	if told {
		return
	}
	_, err := s.Send(Message{Body: fmt.Sprintf("waxmpp was disconnected because another client logged in to the bot's account (%s) with the same resource. "+
		"If you tried the bot's account in an app, log it out there; two waxmpp instances must not share one account.", s.cfg.JID)})
	if err != nil {
		s.log.Error("cannot queue the conflict notice", "err", err)
	}
}
