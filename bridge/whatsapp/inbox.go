package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"waxmpp/bridge"
)

// inbox is the durable queue of WhatsApp events on their way to the core.
// push is called from whatsmeow's handler (and the adapter's goroutines),
// deliver runs on one goroutine, handled on the core's.
type inbox struct {
	q Queue
	// signal says "the queue grew". Capacity 1: a pending signal already
	// says "look again".
	signal chan struct{}
	// kick says "an event was handled": its removal from disk is due
	// within a second. Capacity 1, like signal.
	kick chan struct{}

	ackMu sync.Mutex // held by ackThrough
	mu    sync.Mutex
	seqs  map[bridge.Event]uint64 // delivered, not yet handled
	done  uint64                  // everything up to here is handled
	acked uint64                  // everything up to here is off the disk
}

// ackEvery bounds how many handled events may wait for their removal from
// disk: removal is batched, and after a crash those few are delivered
// again and dropped by the core. With the store's queues a removal goes
// with the next commit of anything (laterQueue), and commits by itself
// only once ackEvery wait; with another queue it commits once ackEvery
// wait, when the inbox goes idle, or a second after the last handled
// event. An idle inbox with nothing to remove does not wake up at all.
const ackEvery = 256

func newInbox(q Queue) inbox {
	return inbox{q: q, signal: make(chan struct{}, 1), kick: make(chan struct{}, 1), seqs: map[bridge.Event]uint64{}}
}

// stageInbox times push's durable write (bridge.NewStage).
var stageInbox = bridge.NewStage("whatsapp inbox write")

// push writes evs to disk, in order, in one transaction.
func (b *inbox) push(evs ...bridge.Event) error {
	if len(evs) == 0 {
		return nil
	}
	recs := make([][]byte, 0, len(evs))
	for _, ev := range evs {
		r, err := marshalEvent(ev)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	t := bridge.StageStart()
	if _, err := b.q.Enqueue(recs...); err != nil {
		return fmt.Errorf("whatsapp: queue %d events: %w", len(evs), err)
	}
	stageInbox.Done(t)
	select {
	case b.signal <- struct{}{}:
	default:
	}
	return nil
}

// deliver sends queued events to out in order until ctx ends: first what
// a previous run left, then what arrives. A record that cannot be decoded
// (a damaged file) is logged and skipped; it leaves the queue with the
// next handled event.
func (b *inbox) deliver(ctx context.Context, out chan<- bridge.Event, log *slog.Logger) {
	var after uint64
	for {
		items, err := b.q.Peek(after, 64)
		if err != nil {
			log.Error("cannot read the inbox", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		if len(items) == 0 {
			b.flush(log)
			if !b.idle(ctx) {
				b.flush(log)
				return
			}
			continue
		}
		for _, it := range items {
			after = it.Seq
			ev, err := unmarshalEvent(it.Data)
			if err != nil {
				log.Error("skipping a damaged inbox record", "seq", it.Seq, "err", err)
				continue
			}
			b.mu.Lock()
			b.seqs[ev] = it.Seq
			b.mu.Unlock()
			select {
			case out <- ev:
			case <-ctx.Done():
				b.flush(log)
				return
			}
		}
	}
}

// idle waits for new events, or, while handled events are still on disk,
// for the second after which they are removed; false when ctx ended.
func (b *inbox) idle(ctx context.Context) bool {
	for {
		kick, later := b.kick, (<-chan time.Time)(nil)
		if b.pending() {
			t := time.NewTimer(time.Second)
			defer t.Stop()
			kick, later = nil, t.C
		}
		select {
		case <-b.signal:
			return true
		case <-later:
			return true
		case <-kick: // handled since: pending now
		case <-ctx.Done():
			return false
		}
	}
}

// pending reports whether handled events wait for their removal.
func (b *inbox) pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done > b.acked
}

// flush removes the handled events from disk.
func (b *inbox) flush(log *slog.Logger) {
	b.mu.Lock()
	seq := b.done
	b.mu.Unlock()
	if err := b.ackThrough(seq); err != nil {
		log.Error("cannot remove handled events from the inbox", "err", err)
	}
}

// laterQueue is a Queue whose removals may wait for the store's next
// commit (bridge/store's queues): AckThroughLater takes the items out of
// Peek at once and off the disk with whatever commits next; Removed is
// the highest seq whose removal is on disk.
type laterQueue interface {
	AckThroughLater(seq uint64)
	Removed() uint64
}

// ackThrough removes the events through seq. Where the queue can, the
// removal waits for the next commit (the next event's push, the core's
// next batch): a handled event then costs no commit of its own. Once
// ackEvery of them wait, it commits.
func (b *inbox) ackThrough(seq uint64) error {
	// One removal at a time: deliver's flush and handled may both find
	// the same seq due, and the second has nothing left to remove.
	b.ackMu.Lock()
	defer b.ackMu.Unlock()
	b.mu.Lock()
	if seq <= b.acked {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if lq, ok := b.q.(laterQueue); ok && seq < lq.Removed()+ackEvery {
		lq.AckThroughLater(seq)
	} else if err := b.q.AckThrough(seq); err != nil {
		return err
	}
	b.mu.Lock()
	b.acked = max(b.acked, seq)
	b.mu.Unlock()
	return nil
}

// handled marks ev and everything queued before it as handled; they leave
// the disk in batches (ackEvery).
func (b *inbox) handled(ev bridge.Event) error {
	b.mu.Lock()
	seq, ok := b.seqs[ev]
	if ok {
		delete(b.seqs, ev)
		if len(b.seqs) > 0 {
			for e, s := range b.seqs {
				if s < seq {
					delete(b.seqs, e)
				}
			}
		}
		b.done = max(b.done, seq)
	}
	_, later := b.q.(laterQueue)
	due := later || b.done >= b.acked+ackEvery
	seq = b.done
	b.mu.Unlock()
	if !due {
		select {
		case b.kick <- struct{}{}:
		default:
		}
		return nil
	}
	return b.ackThrough(seq)
}
