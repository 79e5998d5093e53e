package bridge

import (
	"testing"
	"time"
)

func TestStageBuckets(t *testing.T) {
	for _, ns := range []uint64{0, 1, 1023, 1024, 1279, 1280, 1535, 1536, 2047, 2048, 1e6, 1e9 + 7, 1<<37 - 1} {
		i := stageBucket(ns)
		if up := stageUpper(i); ns >= up {
			t.Errorf("%d ns: bucket %d ends at %d, below it", ns, i, up)
		}
		if i > 0 && stageUpper(i-1) > ns {
			t.Errorf("%d ns: bucket %d starts at %d, above it", ns, i, stageUpper(i-1))
		}
		if i > 1 && float64(stageUpper(i))/float64(stageUpper(i-1)) > 1.25+1e-9 {
			t.Errorf("bucket %d is %d..%d: wider than 25%%", i, stageUpper(i-1), stageUpper(i))
		}
	}
	if i := stageBucket(1 << 40); i != stageBuckets-1 {
		t.Errorf("2^40 ns in bucket %d, want the last (%d)", i, stageBuckets-1)
	}
}

func TestStageQuantiles(t *testing.T) {
	s := NewStage("test quantiles")
	EnableStages(true)
	defer EnableStages(false)
	for i := 1; i <= 100; i++ {
		s.Observe(time.Duration(i) * time.Millisecond)
	}
	st := stats(t, "test quantiles")
	if st.Count != 100 || st.Max != 100*time.Millisecond || st.Sum != 5050*time.Millisecond {
		t.Fatalf("count %d max %v sum %v, want 100, 100ms, 5.05s", st.Count, st.Max, st.Sum)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := st.Quantile(c.q)
		if got < c.want || float64(got) > 1.25*float64(c.want) {
			t.Errorf("q%.2f = %v, want %v (up to 25%% above)", c.q, got, c.want)
		}
	}
	s.Observe(time.Hour) // the open-ended bucket: the maximum
	if got := stats(t, "test quantiles").Quantile(1); got != time.Hour {
		t.Errorf("q1 after an hour = %v, want 1h", got)
	}
	EnableStages(true) // zeroes
	if st := stats(t, "test quantiles"); st.Count != 0 || st.Max != 0 || st.Quantile(0.5) != 0 {
		t.Errorf("after EnableStages: %+v, want nothing", st)
	}
}

// Off, a hook records nothing; on or off it allocates nothing.
func TestStageHooks(t *testing.T) {
	s := NewStage("test hooks")
	EnableStages(false)
	if a := testing.AllocsPerRun(100, func() { s.Done(StageStart()) }); a != 0 {
		t.Errorf("off: %v allocations per observation", a)
	}
	if n := stats(t, "test hooks").Count; n != 0 {
		t.Errorf("off: %d observations recorded", n)
	}
	EnableStages(true)
	defer EnableStages(false)
	if a := testing.AllocsPerRun(100, func() { s.Done(StageStart()) }); a != 0 {
		t.Errorf("on: %v allocations per observation", a)
	}
	if n := stats(t, "test hooks").Count; n != 101 { // AllocsPerRun runs it once more
		t.Errorf("on: %d observations recorded, want 101", n)
	}
}

func stats(t *testing.T, name string) StageStats {
	t.Helper()
	for _, s := range Stages() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return StageStats{}
}

func BenchmarkStageOff(b *testing.B) {
	s := NewStage("bench off")
	EnableStages(false)
	for b.Loop() {
		s.Done(StageStart())
	}
}

func BenchmarkStageOn(b *testing.B) {
	s := NewStage("bench on")
	EnableStages(true)
	defer EnableStages(false)
	for b.Loop() {
		s.Done(StageStart())
	}
}
