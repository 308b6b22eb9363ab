package dataplane

// The accept rules: what a message must be to be answered from the zones,
// checked in the order below, the first rule broken deciding the reply, as
// miekg/dns's acceptfunc.go lists them for its server (DefaultMsgAcceptFunc).
// Unlike that server, which rejects any record in the answer or authority
// section and more than two additional records, ringdns answers a query
// whatever records follow its question as long as they parse; only an OPT
// record is read among them.
//
//  1. acceptMessage, from the header alone: a message too short for a
//     header, or a response, gets no reply at all.
//  2. In answer, with parseQName and parseRecords: a message with other
//     than one question (QDCOUNT 1: RFC 9619 allows a QUERY no more, and
//     without one there is nothing to look up), or whose question or
//     records do not parse, gets the rcode of malformedRcode (FORMERR, or
//     NOTIMP for an opcode other than QUERY) with the header and what of
//     the question and OPT record could be read. Only an OPT record is
//     read among the records, and it must be in the additional section.
//     A TSIG record anywhere but last in the additional section breaks
//     this rule (FORMERR, RFC 8945 section 5.1), as does a second one.
//  3. acceptQuery, for a sound query: over UDP a NOTIFY, and a message
//     signed with TSIG, are handed off to the control plane (KindHandoff),
//     which alone holds the zones' ACLs, the keys and miekg/dns; an opcode
//     other than QUERY, an EDNS version other than 0, a class not served
//     and a type that is not answered from zone data each get their error
//     rcode; a CHAOS query is answered from the identity table; everything
//     else is looked up.

const (
	opcodeQuery  = 0
	opcodeNotify = 4
)

// opcode returns the OPCODE field of the header of q.
func opcode(q []byte) uint8 { return q[2] >> 3 & 0xF }

// acceptMessage decides from its header alone whether the message q gets a
// reply: DropNone when it does, else why not.
func acceptMessage(q []byte) DropReason {
	switch {
	case len(q) < hdrLen:
		// No header: no ID to answer with.
		return DropShort
	case q[2]&0x80 != 0:
		// QR set: a response is never answered, not even with an error,
		// which could start a ping-pong with the server that sent it.
		return DropResponse
	}
	return DropNone
}

// malformedRcode returns the rcode and kind of the reply to a query that
// does not parse: FORMERR, but NOTIMP for an opcode other than QUERY and
// NOTIFY whatever follows its header, since what we cannot parse may be
// sound in an operation we do not implement.
func malformedRcode(op uint8) (uint16, Kind) {
	if op != opcodeQuery && op != opcodeNotify {
		return rcodeNotImp, KindNotImp
	}
	return rcodeFormErr, KindFormErr
}

// acceptQuery decides how the sound query qy, whose header holds opcode
// op, is answered: KindAnswer when it is looked up in the zones, KindChaos
// when it is answered from the CHAOS identity table, KindHandoff when the
// control plane answers it, else the rcode and kind of the error reply.
// tcp tells whether it came over TCP.
func acceptQuery(qy *query, op uint8, tcp bool) (uint16, Kind) {
	// One test for the common query, which is neither of the two below.
	if op != opcodeQuery || qy.tsig {
		if (op == opcodeNotify || qy.tsig) && !tcp {
			// The control plane checks a NOTIFY against the zone's ACL
			// and key and starts the refresh, and verifies and signs
			// with TSIG; the worker copies the message to it (Handoff).
			// The reply the engine writes, the header and the question,
			// is not sent, and must leave the records after the
			// question as they came: no OPT record is written over
			// them. Over TCP the control plane has the message already
			// (TCPServer), and the engine answers as before.
			qy.edns = false
			return rcodeNoError, KindHandoff
		}
		if op != opcodeQuery {
			// UPDATE and the rest are not implemented, nor NOTIFY over
			// TCP here.
			return rcodeNotImp, KindNotImp
		}
	}
	switch {
	case qy.edns && qy.vers != 0:
		// EDNS version 0 is the only one (RFC 6891 section 6.1.3).
		return rcodeBadVers, KindBadVers
	case qy.qclass == classCH:
		// The identity table answers or refuses it (Snapshot.chaos).
		return rcodeNoError, KindChaos
	case qy.qclass != classIN && qy.qclass != classANY:
		// QCLASS * matches every class (RFC 1035 section 3.2.5), and IN is
		// the only class the zones hold: it is answered as IN.
		return rcodeRefused, KindRefused
	case qy.qtype == typeIXFR && !tcp:
		// An IXFR over UDP is answered by the control plane, which holds
		// the zones' allow-transfer lists: the current SOA alone to a
		// client they admit (RFC 1995 section 2), REFUSED to the rest.
		// As for the hand-offs above, the message is left as it came.
		qy.edns = false
		return rcodeNoError, KindHandoff
	case qy.qtype == typeAXFR && !tcp:
		// A zone transfer needs TCP; over UDP it is not implemented, as
		// Knot DNS answers it.
		return rcodeNotImp, KindNotImp
	case qy.qtype == typeAXFR || qy.qtype == typeIXFR:
		// Zone transfers are not served to anyone: NOTAUTH, the rcode
		// Knot DNS gives a transfer its ACL denies.
		return rcodeNotAuth, KindRefused
	case qy.qtype == 0:
		// Type 0 is reserved (RFC 6895 section 3.1) and names no data.
		return rcodeNotImp, KindNotImp
	}
	return rcodeNoError, KindAnswer
}
