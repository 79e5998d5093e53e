package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"

	"waxmpp/bridge"
)

// Stage timings on the control socket (bridge.Stages): where a relayed
// message's time goes, for benchmarks and for a look at a running bridge.
//
//	stages on    zero the histograms and record from now; answers "ok"
//	stages       the histograms and the allocation counters, one JSON line
//	stages off   stop recording (what was recorded stays readable)
//	stages allocs  "ok", then the heap profile with every allocation
//	             site since the start (runtime/pprof "allocs", sampled
//	             every 512 KiB; the difference of two: go tool pprof -base),
//	             after a collection so that it is up to date
//
// Recording is off until "stages on": a hook then costs one atomic load.

// stageReport is the answer to "stages".
type stageReport struct {
	Stages []bridge.StageStats `json:"stages"`
	// BucketUpper[i] is the exclusive upper bound of bucket i, in ns.
	BucketUpper []int64 `json:"bucket_upper_ns"`
	// Allocs and AllocBytes count the heap allocations since the
	// process started (runtime.MemStats Mallocs and TotalAlloc).
	Allocs     uint64 `json:"allocs"`
	AllocBytes uint64 `json:"alloc_bytes"`
}

// readAllocs reads the allocation counters exactly: ReadMemStats stops
// the world for a moment to add up every P's cache, where runtime/metrics
// counts a cache's allocations only once it refills a span (off by
// hundreds for a lone message).
func readAllocs() (objects, bytes uint64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs, m.TotalAlloc
}

// answerStages answers a control request "stages [on|off]".
func answerStages(w io.Writer, arg string) {
	switch arg {
	case "on":
		bridge.EnableStages(true)
		fmt.Fprintln(w, "ok")
	case "off":
		bridge.EnableStages(false)
		fmt.Fprintln(w, "ok")
	case "allocs":
		fmt.Fprintln(w, "ok")
		// The profile is as of the last collection: without one the
		// allocations since it are missing (a quiet phase has none).
		runtime.GC()
		pprof.Lookup("allocs").WriteTo(w, 0)
	case "":
		r := stageReport{Stages: bridge.Stages()}
		r.Allocs, r.AllocBytes = readAllocs()
		for _, s := range r.Stages {
			for len(r.BucketUpper) < len(s.Buckets) {
				r.BucketUpper = append(r.BucketUpper, int64(bridge.BucketUpper(len(r.BucketUpper))))
			}
		}
		json.NewEncoder(w).Encode(r)
	default:
		fmt.Fprintf(w, "unknown request \"stages %s\"; known: stages, stages on, stages off, stages allocs\n", arg)
	}
}
