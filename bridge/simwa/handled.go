package simwa

import "waxmpp/bridge"

// Handled is the core's acknowledgement of an event (bridge.WhatsApp). The
// simulator keeps nothing across a restart: a test re-injects what it wants
// delivered again, as WhatsApp would redeliver what was never acknowledged.
func (s *Sim) Handled(bridge.Event) {}
