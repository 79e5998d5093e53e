package bridge

// QueueItem is one entry of a durable FIFO queue (bridge/store's Queue):
// Seq grows strictly and is never reused, so it orders and identifies the
// entry across restarts.
type QueueItem struct {
	Seq  uint64
	Data []byte
}
