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
// A signed zone's NSEC or NSEC3 RRsets are prepared a second time, with
// their RRSIGs, as proof blocks in arenas of their own, which denials of
// existence copy (dnssec.go). The nodes of an NSEC3 zone that hold an
// NSEC3 RRset, its RRSIGs and nothing else (FlagNSEC3Owner: hashed names,
// which no query is answered from, RFC 5155 section 7.2.8) have no RRsets
// in the table: their records are in their proof blocks alone, where Walk
// reads them (found by the hash their owner names), and Apply prepares
// them there. In a TLD signed with NSEC3 such nodes are nearly half of
// the names, and the table's copy of their records was about a quarter
// of its memory. A node with other data beside its NSEC3 RRset, and an
// NSEC3 record the chain ignores (malformed, or not at a hash directly
// below the apex), keep theirs in the table.
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
// Nearly every change set is applied in place, copy-on-write
// (updatefast.go, updatenames.go, updatepartial.go): records changed,
// names added and removed (delegations with their glue and DS, names
// below the apex generally, the empty non-terminals that appear and go
// with them, wildcards, CNAMEs), zone cuts made or removed, NSEC and
// NSEC3 records added, removed and re-pointed. Rebuilt instead are a
// change set that touches over a tenth of the zone's names (past that,
// copying the changed data costs about what building the table does), a
// DNAME gained or lost, the apex's NS RRset gained or lost, a change of
// the apex's DNSKEY or NSEC3PARAM RRsets or of the NSEC3 parameters, an
// NSEC3 record beside other data or at a name that is not a hash below
// the apex, DNSSEC records added to an unsigned zone, an NSEC3 record
// added for a name the change set does not add or change (the hash of an
// existing name, which the index cannot find), an NSEC3 record the chain
// ignores left as its name's only data (the name would be an NSEC3 owner
// with no proof block), and what the loader would refuse (the rebuild
// returns the builder's error).
//
// A version made in place keeps the table's invariants, so that it is
// the table a build from scratch would make, but for where blocks lie in
// the arenas and which slot of the index holds a name:
//
//   - Nodes stay in canonical order and a node's number is its rank.
//     The names added (the change set's new owners and the empty
//     non-terminals above them) are appended to the shared name arena
//     and placed by binary search; a name left without records is removed
//     when nothing below it is left, and so, in turn, is an empty parent.
//     The new node array is the old one copied in runs between the places
//     of insertions and removals (namePlan), 16 bytes a name.
//   - Everything indexed by node number is renumbered: new = old + delta,
//     delta kept per bucket of 64 old nodes, with a search only in the
//     buckets where a name is inserted or removed. The hash index is
//     copied slot by slot with its node numbers renumbered (the slots
//     keep their places, as their hashes do not change), the removed
//     names' slots deleted by backward shift and the added names'
//     inserted; when the node count calls for another size the slots are
//     placed afresh from the hashes they hold. The kept runs, NSEC's
//     nsecAt and NSEC3's match and wild are renumbered the same way. These
//     copies run on every core; for the 1M-delegation TLD they are most
//     of the 67 MB (unsigned) and 167 MB (NSEC3) an update that adds and
//     removes names allocates, and most of its time: the index alone is
//     8 bytes a slot at one and a half slots a name or more. So Apply
//     does not wait
//     for the index (updateindex.go): the new version is published with
//     a provisional view of it, through which a lookup finds a name in
//     the old version's index and numbers its node as the new version
//     does, or finds it among the few names added; the index of its own
//     is made in the background, started once the version is made so
//     that it does not take a core from the update, and swapped in by an
//     atomic pointer of the version (the next update of the version waits
//     for it). A
//     change set that adds and removes no name copies only the node
//     array (the index is shared) and, in an NSEC3 zone, match, wild and
//     the chain's pages whose proof blocks change (the rest is shared).
//   - Flags: a changed or added name's own flags come from its records;
//     FlagOccluded from its parent. A zone cut made or removed changes
//     FlagOccluded below it: those names are prepared anew (glue
//     becoming data or data glue). A wildcard added or removed sets or
//     clears FlagWildcard at its parent.
//   - The RRsets of changed names are prepared anew with the builder's
//     own block writers, run over a partial builder that knows only the
//     changed names, the names their blocks read (targets, and the
//     closest existing ancestor and wildcard a missing target may be
//     synthesized from) and the names whose NS (referrals with glue), MX
//     and SRV blocks read what changed; an unchanged RRset of a changed
//     name keeps its blocks. The new blocks, appended to the shared arenas
//     (blocks, wire, patches, trims; the kept records' wire; the proof
//     blocks), are safe from the readers of older versions because every
//     reader reads only below its version's lengths, which appends past
//     them never touch, and because only the newest version of a line of
//     versions (the lineage's tip) appends in place: updating an older
//     version again cuts its arenas' capacities, so that its appends
//     copy. The arenas (names; the table's RRsets, blocks, wire,
//     patches and trims; the kept records' wire; the proofs' blocks,
//     wire and patches) of 4 MB or more are reserved address space, not
//     Go heap (arenamap.go, internal/vmem): twice their size and 32 MB
//     more, resident only as written, so that a tip appends to them in
//     place for a lineage's whole life and they are never copied; the
//     build's regions are released once its last version is collected.
//     A heap arena that runs out of room grows by a sixteenth (a copy
//     every few dozen updates); the builder leaves a thirty-second of room
//     in the table's, the kept records' and the NSEC3 proof arenas, so
//     that the first updates do not copy them. For a TLD that copy is hundreds of megabytes of
//     fresh memory, whose page faults alone took hundreds of
//     milliseconds, so it is made ahead of need, in the background
//     (updatespare.go): when a tip is published whose arena of a
//     megabyte or more has less room left than two updates like the last
//     take (what it reserved and appended), a goroutine copies the
//     arena's length then, n0, into a spare a sixteenth larger (or four
//     such updates, when more), without a lock, as nothing below a
//     version's lengths is written again. The tip's next update takes
//     the spare when the copy is done, or waits for it when the arena
//     must grow: it copies only what was appended past n0. A spare is
//     the lineage's, keyed by the arena's backing array and n0, and taken
//     only by the update that claimed the tip; one that is not of the tip's
//     arenas is dropped when a tip is published, so that a spare lives
//     an update or two, holding the arena's second copy meanwhile, as the
//     copy in the update did until the older versions were released.
//     Zone.Settle waits for the copies. The superseded blocks stay
//     allocated as long as the lineage lives; a rebuild starts a new
//     lineage. Appended counts
//     what a lineage's updates appended, Superseded measures what a
//     version no longer reads (a pass over its table; the NSEC3 chain's
//     pages aside, which bound what they leave behind themselves, see
//     NSEC3 below), and Rebuild builds
//     a version's records into a table of their own: the control plane
//     rebuilds a zone so in the background, and swaps the table in, when
//     its superseded data passes a share of its memory
//     (server.rebuild-superseded).
//   - Which blocks read what changed comes from a reverse index the
//     builder records as it writes NS, MX and SRV blocks: hash(name)<<32
//     | hash(owner) for every in-zone target, and for a target that does
//     not exist, every name its wildcard lookup tried (the ancestors up
//     to the closest existing one, and that one's "*" child). So a name
//     added or removed on that path, a wildcard's addresses changed, a
//     target's addresses changed or its name gone all find the blocks to
//     prepare again; owners are found by their hash in the new index, so
//     the index survives renumbering. Each update adds what its blocks
//     recorded; stale entries only cost a block rebuilt the same. It is
//     built with the table (for the 1M-delegation TLD, 4 MB and a sort of
//     tens of milliseconds within a load of seconds), so that the first
//     update no longer spends 150-420 ms building it.
//   - NSEC: nsecAt is set again from each node prepared anew, added or
//     removed up to the next node with an NSEC of its own; the children
//     index (WideChildren) is copied for the nodes with no name added or
//     removed below them and made again for their ancestors.
//   - NSEC3: the chain is kept in pages, one per value of the hashes'
//     first bits (denial.starts, the rank where each value starts, which
//     narrows every search of the chain to a few neighbours): a build
//     lays the pages out in order, and an update writes again only the
//     pages whose hashes it inserts, removes or points at another proof
//     block, appended to the chain's arenas as the blocks are, with the
//     page's new place in denial.offs; the starts are moved by the hashes
//     inserted and removed below each value. A thousand changed
//     delegations write about 400 KB of pages where the whole chain, 24
//     MB for the signed TLD's million hashes, was copied before. The
//     chain is merged whole again, compact and in order, when the pages
//     written again would pass a sixteenth of it (so for the signed TLD
//     every few updates; a sixteenth is all a lineage's chain holds that
//     it no longer reads), when it is too short for starts or its length
//     calls for more bits, and when the version is not its lineage's tip.
//     A name left with its NSEC3
//     RRset alone becomes an NSEC3 owner, its RRsets dropped from the
//     table and its proof block prepared again; match and wild entries that
//     pointed at a block replaced in place are pointed at the new one,
//     and those that pointed at a block removed, or at the block before
//     an inserted hash (whose range the insertion splits), are computed
//     again from the node's hash, as are those of the names touched.
//   - The arrays an update writes last (NSEC3's match and wild,
//     the kept runs) are, in a large zone, made at the plan by a
//     goroutine of their own that touches their pages meanwhile
//     (updateearly.go): memory fresh from the system costs more to touch
//     than the copy that fills it. Better still, Zone.PrepareNext, which
//     the catalog calls after the collection that frees an update's old
//     version, makes them and the node array for the next update of a
//     large zone, from the memory just freed, and the lineage holds them
//     until that update takes them (updatenodes.go); when that update
//     is expected to merge the NSEC3 chain whole (its pages written
//     again, as many as the last update's, would pass the bound), the
//     chain's two arrays as well (denial.chainAhead), 26 MB for the
//     signed TLD, which the merge writes instead of memory of its own.
//     Arrays made ahead, and the large ones an update writes whole,
//     are mapped by the system in one call before they are written
//     (vmem.Populate), which on this project's VM takes 40-50% off
//     their cost when the memory is fresh (see touched). The catalog
//     lets go of them when it gives the heap's free memory back after
//     a quiet spell, and calls PrepareNext again when the next update is
//     announced (a newer serial seen, a changed file being read), so
//     that they are made while the transfer or the parse runs; or,
//     with server.update-ahead-keep, keeps them as live memory between
//     updates (Zone.AheadBytes; 64 MB for the signed TLD).
//   - The negative-answer SOA and the serial follow the SOA; block
//     checksum parts (onessum) are computed as each block is written,
//     as in a full build.
//
// Anything else is rebuilt: the old version's records (Walk) less the
// deletions and with the additions are handed to the builder directly, no
// text written or parsed; Zone.Applied says which way a version was made,
// and why it was rebuilt.
//
// Warnings follow the records (updatewarn.go): a version made in place
// drops the warnings about the names the change set touched and checks
// their records again (an RRset's TTLs that differ, RRSIGs over no
// RRset), and checks the NSEC or NSEC3 chain around what changed (whole
// when it was broken before, as the builder reports only the first
// gap), so that its warnings are a load's of the same records; those it
// finds name the zone's file but no line.
//
// A caveat of the way versions are made: the RDATA of the RRsets built
// again comes from Walk's canonical form, so names inside it are served
// in lowercase where the file had capitals (the records are the same, RFC
// 4343).
package zone
