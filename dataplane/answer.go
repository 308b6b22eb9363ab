package dataplane

// Answer writes the reply to the DNS query q into dst and returns its length,
// 0 when the query gets no reply. dst may start at the same address as q (the
// reply is built in place); it must not otherwise overlap q. tcp selects the
// size limit: 65535 bytes and no EDNS size over TCP, the client's EDNS size
// bounded by Config.UDPSize (at least 512) over UDP.
//
// IN PROGRESS: the engine is being written; until then every query is dropped.
func (s *Snapshot) Answer(dst, q []byte, tcp bool) (int, Result) {
	return 0, Result{Kind: KindDrop, Drop: DropMalformed, Zone: -1}
}
