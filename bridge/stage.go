package bridge

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Stage timings: where a relayed message's time goes (the WhatsApp
// inbox write, the core, the XMPP outbox commit, the socket write...),
// each a fixed-bucket histogram of durations kept in atomic counters,
// for benchmarks and for looking at a running bridge (the control
// socket's "stages" request, cmd/waxmpp).
//
// Recording is off until something asks (EnableStages): then a hook
// costs one atomic load and nothing else, not even a clock read (on a
// Pi Zero or 1 without a vDSO clock, reading the time is a system call).
// On, an observation is a clock read and a few atomic adds, with no
// allocation and no lock. A package declares its stages once, at init,
// with NewStage; a hook is one line at each end of what it times:
//
//	t := bridge.StageStart()
//	...
//	outboxCommit.Done(t)

// Stage is one histogram. Its zero value is not usable: use NewStage.
type Stage struct {
	name    string
	counts  [stageBuckets]atomic.Uint64
	sum     atomic.Uint64 // nanoseconds
	maxSeen atomic.Uint64 // nanoseconds
}

// Buckets: one for everything under 1,024 ns, then four per power of two
// up to 2^37 ns (2 minutes 17 s), the last also holding all above: a percentile read
// from them is within 19% of the truth (and never above the maximum).
const (
	stageMinShift = 10
	stageMaxShift = 37
	stageBuckets  = 1 + (stageMaxShift-stageMinShift)*4
)

var (
	stagesOn  atomic.Bool
	stagesMu  sync.Mutex
	stageList []*Stage
)

// NewStage registers a stage under name ("xmpp outbox commit"); call it
// once per stage, from a package-level var.
func NewStage(name string) *Stage {
	s := &Stage{name: name}
	stagesMu.Lock()
	stageList = append(stageList, s)
	stagesMu.Unlock()
	return s
}

// EnableStages turns recording on or off; on, it first zeroes every
// stage, so that what Stages returns then counts from this call.
func EnableStages(on bool) {
	if on {
		stagesMu.Lock()
		for _, s := range stageList {
			s.reset()
		}
		stagesMu.Unlock()
	}
	stagesOn.Store(on)
}

// StageStart is the start of an observation: now, or the zero time when
// recording is off (Done then does nothing).
func StageStart() time.Time {
	if !stagesOn.Load() {
		return time.Time{}
	}
	return time.Now()
}

// Done records the time since t, a StageStart; nothing if t is zero.
// Safe for concurrent use.
func (s *Stage) Done(t time.Time) {
	if t.IsZero() {
		return
	}
	s.Observe(time.Since(t))
}

// Observe records d. Safe for concurrent use.
func (s *Stage) Observe(d time.Duration) {
	ns := uint64(max(d, 0))
	s.counts[stageBucket(ns)].Add(1)
	s.sum.Add(ns)
	for {
		m := s.maxSeen.Load()
		if ns <= m || s.maxSeen.CompareAndSwap(m, ns) {
			return
		}
	}
}

func (s *Stage) reset() {
	for i := range s.counts {
		s.counts[i].Store(0)
	}
	s.sum.Store(0)
	s.maxSeen.Store(0)
}

// stageBucket is the bucket of ns nanoseconds.
func stageBucket(ns uint64) int {
	if ns < 1<<stageMinShift {
		return 0
	}
	e := bits.Len64(ns) - 1 // 2^e <= ns < 2^(e+1)
	if e >= stageMaxShift {
		return stageBuckets - 1
	}
	sub := int(ns>>(e-2)) & 3
	return 1 + (e-stageMinShift)*4 + sub
}

// stageUpper is the smallest duration above bucket i (its exclusive
// upper bound), in nanoseconds.
func stageUpper(i int) uint64 {
	if i == 0 {
		return 1 << stageMinShift
	}
	e, sub := stageMinShift+(i-1)/4, uint64((i-1)%4)
	return (4 + sub + 1) << (e - 2)
}

// StageStats is a stage's histogram as read at one moment.
type StageStats struct {
	Name  string        `json:"name"`
	Count uint64        `json:"count"`
	Sum   time.Duration `json:"sum_ns"`
	Max   time.Duration `json:"max_ns"`
	// Buckets[i] counts observations under BucketUpper(i) and at or
	// above BucketUpper(i-1); trailing empty buckets are left out.
	Buckets []uint64 `json:"buckets"`
}

// Stages reads every stage, in the order they were registered. While
// observations go on, a read may be a few observations apart between
// counts, sum and maximum.
func Stages() []StageStats {
	stagesMu.Lock()
	defer stagesMu.Unlock()
	out := make([]StageStats, 0, len(stageList))
	for _, s := range stageList {
		st := StageStats{Name: s.name, Sum: time.Duration(s.sum.Load()), Max: time.Duration(s.maxSeen.Load())}
		last := -1
		b := make([]uint64, stageBuckets)
		for i := range s.counts {
			b[i] = s.counts[i].Load()
			st.Count += b[i]
			if b[i] > 0 {
				last = i
			}
		}
		st.Buckets = b[:last+1]
		out = append(out, st)
	}
	return out
}

// BucketUpper is the exclusive upper bound of bucket i of
// StageStats.Buckets.
func BucketUpper(i int) time.Duration { return time.Duration(stageUpper(i)) }

// Quantile is the duration under which the fraction q of the
// observations fell: the upper bound of the bucket that holds it, or the
// maximum if that is smaller. Zero without observations.
func (s StageStats) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := uint64(q*float64(s.Count-1)) + 1 // 1-based
	var n uint64
	for i, c := range s.Buckets {
		n += c
		if n >= rank {
			if i == stageBuckets-1 { // open-ended
				return s.Max
			}
			return min(BucketUpper(i), s.Max)
		}
	}
	return s.Max
}
