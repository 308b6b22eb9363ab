package dataplane

// Kind classifies an answer for counters and logs.
type Kind uint8

const (
	KindDrop      Kind = iota // no reply is sent
	KindAnswer                // authoritative data in the answer section
	KindReferral              // delegation: NS in authority, no AA
	KindNoData                // name exists, type does not
	KindNXDomain              // name does not exist
	KindRefused               // not authoritative, or class not served
	KindFormErr               // malformed question or header
	KindNotImp                // opcode not implemented
	KindBadVers               // unknown EDNS version
	KindChaos                 // CHAOS identity answer
	KindServFail              // the reply could not be built
	KindHandoff               // handed off to the control plane (NOTIFY, TSIG over UDP); see Handoff
	KindBadCookie             // BADCOOKIE: a valid server cookie is required (RFC 7873 section 5.2.3)
	NumKinds
)

// DropReason says why a packet got no reply.
type DropReason uint8

const (
	DropNone       DropReason = iota
	DropShort                 // shorter than a DNS header
	DropResponse              // QR=1: never answer a response
	DropMalformed             // header unsound and question unparsable
	DropFrame                 // AF_XDP: link, network or transport header not ours or unsound; the port drops the frame and counts it (nic.XDPPort.FrameDrops)
	DropNoSpace               // the buffer cannot hold even a minimal reply
	DropNoSnapshot            // no snapshot published yet: nothing to answer from
	DropReflection            // UDP source port of a service that answers anything (see reflectionPort)
	DropHandoff               // to be handed off, but the worker's Handoff ring was full, absent, or the message larger than its slots
	DropRRL                   // over the response rate limit and not slipped (see RRL)
	DropChecksum              // AF_XDP: the UDP or IPv4 header checksum does not verify; the port drops the frame and counts it (nic.XDPPort.ChecksumDrops)
	NumDropReasons
)

// Result describes one answered (or dropped) query.
type Result struct {
	Kind   Kind
	Drop   DropReason
	Rcode  uint16 // full (extended) rcode: BADVERS is 16
	TC     bool   // the reply was truncated
	DO     bool   // the query had EDNS with DO=1
	EDNS   bool   // the query had an OPT record
	Cookie bool   // the query carried a valid server cookie (RFC 7873)
	Zone   int32  // index of the zone in the snapshot's zone.Set, -1 when none
	// CookieVerdict says what the query's COOKIE option was, for the
	// counters: CookieNone when it had none or cookies are off.
	CookieVerdict CookieVerdict
}
