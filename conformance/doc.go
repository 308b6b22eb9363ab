// Package conformance compares ringdns with Knot DNS answer for answer.
//
// The test in this package starts knotd and ringdns on loopback ports with the
// same zones and the same identity settings, sends both the same corpus of
// queries (generated from the zones, deterministic from a seed) and compares
// the replies semantically. Operators trust a new authoritative server only
// when it answers as the one they already run, so every difference is either
// a bug or an entry in testdata/deliberate.txt that names its RFC reason.
//
// The suites, one pair of servers each: the real signed root zone; the
// crafted edge-case zones of testdata; and those zones signed in the test
// with fresh keys (ldns-keygen and ldns-signzone), once with NSEC, once with
// NSEC3 and once with NSEC3 opt-out, served as signed files by both servers.
//
// The comparison policy, written once here because the kinds in reports and
// in deliberate.txt refer to it:
//
//   - A reply that only one server sends is a missing-reply difference. A
//     query that neither server answers (a response sent as a query, say) is
//     identical: both dropped it.
//   - The header is compared field by field: the ID, QR, the opcode, AA, TC,
//     RD, RA, Z, AD, CD and the full rcode (the header's four bits and the
//     OPT's extended bits together).
//   - The question section is compared byte for byte on the wire, because
//     clients match replies by it and 0x20 clients by its exact letter case.
//   - Answer and authority are compared as multisets of records. Names in
//     owners and in RDATA are compared without regard to case first (RFC 4343:
//     name compression may legitimately borrow the case of the question), and
//     then, if only case differs, the difference is of kind <section>-case;
//     when only TTLs differ it is <section>-ttl.
//   - The additional section, without the OPT, is compared the same way as a
//     set: which glue or target addresses a server adds is a policy (RFC 1034
//     4.3.2 step 6 and RFC 9471 allow choices), so such differences are kept
//     apart from the answer and authority and may be listed as deliberate.
//   - When both UDP replies have TC set, their sections are not compared: the
//     client discards them and retries over TCP (RFC 1035 4.2.1, RFC 7766),
//     and the harness does the same retry and compares the TCP replies fully.
//   - The OPT record is compared on its own: presence, count, version, DO, the
//     other flag bits, the UDP payload size and the options (code and data).
package conformance
