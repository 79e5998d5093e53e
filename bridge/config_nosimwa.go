//go:build !simwa

package bridge

// simulatorBuilt tells Validate that this binary has no simulated
// WhatsApp, so whatsapp.simulator is an error.
const simulatorBuilt = false
