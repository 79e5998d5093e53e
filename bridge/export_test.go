package bridge

import "time"

// SetOwnerClock gives c's hold of a burst's owner batch (batch.go:
// ownerLinger) a test's clock and one-shot timer. Call it before Run.
func SetOwnerClock(c *Core, now func() time.Time, after func(time.Duration) (<-chan time.Time, func() bool)) {
	c.ownerClock = holdClock{now: now, after: after}
}

const (
	OwnerLinger  = ownerLinger
	OwnerHoldMax = ownerHoldMax
)

// SetIdleAfter sets idleAfter (CoreConfig.Idle) and returns what restores it.
func SetIdleAfter(d time.Duration) func() {
	old := idleAfter
	idleAfter = d
	return func() { idleAfter = old }
}
