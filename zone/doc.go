// Package zone turns RFC 1035 master files into immutable, compact,
// index-based tables, and groups them into a Set with longest-suffix
// selection of the zone for a query name.
//
// A Table keeps owner names as lowercase wire format in one byte arena in
// canonical order (RFC 4034 section 6.1), an open-addressing hash index of
// uint32 slots, and each node's RRsets as offsets into flat arenas. Resource
// records are stored as prepared wire-format blocks whose compression
// pointers are patched at answer time. Nothing in a Table holds a Go pointer
// per name or record, so the garbage collector never scans them.
//
// miekg/dns is used here, at build time only; nothing on the answer path
// calls into it.
//
// # Updates
//
// Zone.Apply makes a new version of a zone from a change set (an IXFR's
// deletions and additions, or the difference between the served zone and
// a reloaded file) and leaves the old version serving, untouched, so that
// the control plane publishes the new one by one atomic pointer swap and
// readers never take a lock. The change set is checked whole first: a
// deletion of a record the zone does not hold, a record outside the zone
// or not of class IN is refused, and so is a result the loader would
// refuse (it is then built, and the builder's own check gives the error).
//
// A change set that adds and removes no name, and changes at no name the
// presence of an NS (a zone cut), CNAME, DNAME, NSEC or NSEC3 RRset, nor
// the apex's SOA count, DNSKEY or NSEC3PARAM, nor a wildcard's addresses,
// and touches at most a tenth of the zone's names, is applied in place,
// copy-on-write (updatefast.go, updatepartial.go). Such a change leaves
// the set of names, their canonical order, every node's flags and the
// NSEC/NSEC3 chain's order as they were, so:
//
//   - The name arena, the hash index and the NSEC children index are
//     shared with the old version as they are.
//   - The node array is copied (16 bytes a name); a changed node gets its
//     RRsets appended at the end of the RRset array, which is shared. The
//     RRsets that did not change keep their blocks.
//   - New blocks are appended to the shared arenas (blocks, wire, patches,
//     trims; the kept records' wire; the proof blocks). This is safe
//     because every reader of a version reads only below that version's
//     lengths, which appends past them never touch, and because only the
//     newest version of a line of versions (the lineage's tip) appends in
//     place: updating an older version again cuts its arenas' capacities,
//     so that its appends copy. The old version's arenas stay reachable
//     through the new one until it is gone; what the superseded blocks
//     hold stays allocated as long as the lineage lives (see below).
//   - The derived data a change touches is prepared again with the
//     builder's own block writers, run over a partial builder that knows
//     only the changed names, the names their blocks read (targets, and
//     the closest ancestor and wildcard a missing target may be
//     synthesized from) and the names whose blocks read a changed name's
//     addresses: those NS (referrals with glue), MX and SRV blocks, found
//     by a reverse index of targets (hash of the target and node, sorted)
//     built on a lineage's first update and extended by each update's
//     changed RRsets; stale entries only cost a block rebuilt the same.
//     The signatures of additional addresses, the negative-answer SOA,
//     the serial, the kept records (glue and occluded data) of changed
//     names, and the NSEC or NSEC3 proof blocks of changed chain records
//     are prepared again; the denial indexes (NSECAt; NSEC3 hash blocks,
//     Match and Wild) are copied with the old proof blocks replaced by
//     the new. Block checksum parts are computed as each block is
//     written, as in a full build.
//
// Anything else is rebuilt: the old version's records (Walk) less the
// deletions and with the additions are handed to the builder directly, no
// text written or parsed; Zone.Applied says which way a version was made,
// and why it was rebuilt. A rebuilt version starts a new lineage and
// drops the old one's superseded blocks. Not yet applied in place: names
// added or removed (a new delegation, a delegation removed, new glue
// names, an empty non-terminal appearing), a zone cut made or removed,
// NSEC/NSEC3 chain membership changes, a wildcard's addresses, and
// DNSKEY/NSEC3PARAM changes.
//
// Two caveats of the way versions are made. The RDATA of the RRsets built
// again comes from Walk's canonical form, so names inside it are served
// in lowercase where the file had capitals (the records are the same, RFC
// 4343). Warnings are those of the loaded version, not recomputed.
package zone
