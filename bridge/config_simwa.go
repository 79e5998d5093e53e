//go:build simwa

package bridge

// simulatorBuilt tells Validate that this binary has the simulated
// WhatsApp (built with -tags simwa), so whatsapp.simulator may be set.
const simulatorBuilt = true
