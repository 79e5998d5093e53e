package bridge

import "strings"

// Finding is one health check of `waxmpp doctor` (package setup/doctor),
// as /status shows it: the check's name, its status ("ok", "warning",
// "problem" or "skipped"), what is so, and what to do.
type Finding struct {
	Check, Status, Message, Fix string
}

// Doctor gives /status the findings of the health checks that `waxmpp
// doctor` runs, run in the background by whoever implements it.
// Findings returns the latest results at once, never blocking (nil before
// the first run); the core calls it from its own goroutine.
type Doctor interface {
	Findings() []Finding
}

// doctorStatus is /status's part about the health checks: each warning and
// problem with what to do, or that all is well; "" without a Doctor.
func doctorStatus(d Doctor) string {
	if d == nil {
		return ""
	}
	fs := d.Findings()
	if fs == nil {
		return "Checks: running (ask /status again in a minute)."
	}
	var b strings.Builder
	for _, f := range fs {
		mark := ""
		switch f.Status {
		case "warning":
			mark = "⚠️"
		case "problem":
			mark = "❌"
		default:
			continue
		}
		b.WriteString("\n" + mark + " " + f.Check + ": " + f.Message)
		if f.Fix != "" {
			b.WriteString(" → " + f.Fix)
		}
	}
	if b.Len() == 0 {
		return "Checks: all well (the same as waxmpp doctor)."
	}
	return "Checks (the same as waxmpp doctor):" + b.String()
}
