package simwa

import "waxmpp/bridge"

// Handled implements bridge.WhatsApp: the core's acknowledgement that it
// has durably dealt with ev. The simulator counts it and pushes it to the
// watchers that asked for acknowledgements (see ack). It keeps nothing
// across a restart: a test re-injects what was never acknowledged, as
// WhatsApp redelivers what a device never acknowledged.
func (s *Sim) Handled(ev bridge.Event) { s.ack(ev) }
