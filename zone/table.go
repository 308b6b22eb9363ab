package zone

import (
	"bytes"
	"sync/atomic"

	"github.com/ringdns/ringdns/internal/onessum"
)

// Node flags.
const (
	FlagApex       uint16 = 1 << iota // the zone's apex
	FlagDelegation                    // NS at a name other than the apex: a zone cut
	FlagOccluded                      // below a zone cut: glue or occluded data, never an answer
	FlagCNAME                         // has a CNAME RRset
	FlagDNAME                         // has a DNAME RRset
	FlagWildcard                      // has a child named "*"
	FlagEmpty                         // an empty non-terminal: exists only because of names below it
	FlagIsWildcard                    // its leftmost label is "*"
)

// None marks an absent index.
const None = ^uint32(0)

// Node is one owner name of the zone (or an empty non-terminal). Nodes are
// stored in canonical order, so index order is name order.
type Node struct {
	Name   uint32 // offset of the lowercase wire name in Names()
	Set0   uint32 // index of the node's first RRset in Sets()
	NSets  uint16 // number of RRsets, sorted by type
	Flags  uint16
	Len    uint8 // bytes of the wire name
	Labels uint8 // labels of the name, the root not counted
}

// RRset is one RRset of a node. The records themselves live only in
// prepared wire-format blocks.
type RRset struct {
	Type  uint16
	Count uint16 // records
	TTL   uint32
	// Block is the prepared block of the RRset with its owner as the first
	// record's name. At a delegation the NS RRset's block is the referral:
	// the NS records followed by glue as additional records.
	Block uint32
	// Sig is the block of the RRSIG records covering this RRset, or None.
	Sig uint32
	// Target is, for CNAME and DNAME, the offset in Names() of the target
	// name in lowercase wire format; None otherwise.
	Target uint32
}

// Block is a run of prepared wire-format resource records. The first Base
// bytes are records of the answer or authority section; the rest are
// additional records in groups that may be dropped from the end.
//
// Compression pointers are stored as codes to be patched when the block is
// copied into a message; Patch lists their positions. A code 0xE000|i stands
// for the owner name with i labels stripped; a code 0xC000|r (r < 0x2000)
// points r bytes into the block itself.
type Block struct {
	Off    uint32 // offset in Wire()
	Patch  uint32 // first position in Patches()
	Trim   uint32 // first additional group in Trims()
	Len    uint16 // bytes in all
	Base   uint16 // bytes of the base part
	NPatch uint16 // patch positions, ascending
	Count  uint16 // records of the base part
	NTrim  uint16 // additional groups
	Req    uint16 // leading additional groups that must fit (in-domain glue, RFC 9471), else TC
	Labels uint8  // labels of the owner name the codes refer to
	Flags  uint8  // BlockAddSigs
	// Sum is the ones'-complement sum (RFC 1071) of the base part's
	// 16-bit big-endian words as stored, pointer codes included, folded to
	// 16 bits. Ones'-complement sums add, so the answer engine builds the
	// UDP checksum of a reply from the sums of the blocks it copies,
	// corrected for the codes it patches, instead of summing the reply
	// again. It sits in the Block's padding.
	Sum uint16
}

// Block flags.
const (
	// BlockAddSigs marks a block whose additional groups include signed
	// address RRsets: Trims() then holds, after the block's NTrim groups,
	// the RRSIG blocks of each group's A and AAAA RRsets (see
	// AdditionalSigs).
	BlockAddSigs uint8 = 1 << iota
)

// Trim ends an additional group: End is the offset within the block just
// after the group, Count the additional records up to and including it.
//
// A block with additional groups has one more Trim after its NTrim groups,
// whose End holds the ones'-complement sum of the whole additional part
// (block offsets Base to Len, summed as if it started at an even offset)
// and whose Count is 0 (see AdditionalSum).
type Trim struct {
	End   uint16
	Count uint16
}

// AdditionalSigs returns the blocks of the RRSIGs covering the A and the
// AAAA RRset of additional group g of block b, None for an RRset that is
// absent or unsigned (glue). b must have BlockAddSigs. A block index is
// stored as two Trim-sized halves, low half in End, so that the arena
// needs no second index.
func (z *Zone) AdditionalSigs(b *Block, g int) (a, aaaa uint32) {
	t := z.trims[b.Trim+uint32(b.NTrim)+1+2*uint32(g):]
	return uint32(t[0].End) | uint32(t[0].Count)<<16, uint32(t[1].End) | uint32(t[1].Count)<<16
}

// AdditionalSum returns the ones'-complement sum of the whole additional
// part of block b, which must have additional groups (see Trim).
func (z *Zone) AdditionalSum(b *Block) uint16 {
	return z.trims[b.Trim+uint32(b.NTrim)].End
}

// onesSum returns the ones'-complement sum of b's 16-bit big-endian words,
// an odd final byte padded with zero, folded to 16 bits (RFC 1071): the
// partial sum onessum.Sum computes, which the data plane adds the block sums
// to. It runs once per block at build time.
func onesSum(b []byte) uint16 {
	return uint16(onessum.Sum(b, 0))
}

// sigTrim stores block index v as a Trim-sized half pair (see
// AdditionalSigs).
func sigTrim(v uint32) Trim { return Trim{End: uint16(v), Count: uint16(v >> 16)} }

// Pointer codes stored in prepared blocks.
const (
	CodeSuffix   = 0xE000 // | labels stripped from the owner name
	CodeInternal = 0xC000 // | offset within the block, below 0x2000
	MaxInternal  = 0x2000
)

// Zone is one loaded, validated, immutable zone.
type Zone struct {
	origin   string
	file     string
	serial   uint32
	records  int
	warnings []string

	apex       []byte // lowercase wire
	apexLabels int

	names []byte
	nodes []Node
	sets  []RRset
	arenas
	index []slot
	mask  uint32

	// NegSOA and NegSOASig are the blocks of the SOA used in negative
	// answers, at TTL min(SOA TTL, SOA MINIMUM) (RFC 2308 section 3).
	negSOA, negSOASig uint32

	apexNode uint32
	apexHash uint32

	// denial indexes the NSEC or NSEC3 chain of a signed zone (dnssec.go);
	// nil when the zone has none.
	denial *denial

	// kept holds the records no answer is made of (see kept); nil when
	// there are none.
	kept *kept

	// zonemd is VerifyZONEMD's result once computed.
	zonemd atomic.Pointer[ZONEMDResult]

	// upd is what Apply keeps for the next incremental update
	// (updatefast.go).
	upd updState

	// mapped holds the regions of the arenas the zone shares with the
	// build it grew from, nil when none is one (arenamap.go).
	mapped *mappedArenas

	// prov holds the name index of a version made by Apply with names
	// added or removed, nil otherwise (the index is then index and
	// mask): at first the version's lookups go through the index of the
	// version it was made from, and the index of its own, made in the
	// background, replaces that view when done (see updateindex.go). It
	// is set when the version is made and never changed after; the
	// atomic pointer lives behind it so that a lookup does not hand the
	// zone's own address to the atomic load, which escape analysis takes
	// for a leak (the answer engine's lookup state, which holds the
	// zone, then went to the heap: two allocations per query).
	prov *indexHolder
}

type slot struct {
	hash uint32
	node uint32 // node index + 1; 0 = empty
}

// Origin is the zone's apex in presentation format, with a final dot.
func (z *Zone) Origin() string { return z.origin }

// File is the master file the zone was loaded from ("" when parsed from memory).
func (z *Zone) File() string { return z.file }

// Serial is the SOA serial.
func (z *Zone) Serial() uint32 { return z.serial }

// Records is the number of resource records loaded.
func (z *Zone) Records() int { return z.records }

// Warnings are problems that did not stop the zone from loading.
func (z *Zone) Warnings() []string { return z.warnings }

// Apex is the lowercase wire-format apex name.
func (z *Zone) Apex() []byte { return z.apex }

// ApexLabels is the number of labels of the apex.
func (z *Zone) ApexLabels() int { return z.apexLabels }

// The views below expose the table's arenas to the answer engine. They are
// shared, immutable data: callers must not modify them.

func (z *Zone) Names() []byte     { return z.names }
func (z *Zone) Nodes() []Node     { return z.nodes }
func (z *Zone) Sets() []RRset     { return z.sets }
func (z *Zone) Blocks() []Block   { return z.blocks }
func (z *Zone) Wire() []byte      { return z.wire }
func (z *Zone) Patches() []uint16 { return z.patches }
func (z *Zone) Trims() []Trim     { return z.trims }
func (z *Zone) NegSOA() uint32    { return z.negSOA }
func (z *Zone) NegSOASig() uint32 { return z.negSOASig }

// ApexNode is the index of the apex's node, found once when the name index
// is built: every answer starts there.
func (z *Zone) ApexNode() uint32 { return z.apexNode }

func (z *Zone) NodeName(n *Node) []byte {
	return z.names[n.Name : n.Name+uint32(n.Len)]
}

// MemoryBytes is the memory held by the table's arenas, and by the
// reverse index of targets kept for updates (see updState).
func (z *Zone) MemoryBytes() int {
	return len(z.names) + len(z.nodes)*16 + len(z.sets)*20 + z.arenas.bytes() +
		z.indexBytes() + z.denialBytes() + z.keptBytes() + 8*(len(z.upd.refBase)+len(z.upd.refExtra))
}

// bytes is the memory the arenas' elements take.
func (a *arenas) bytes() int {
	return len(a.blocks)*28 + len(a.wire) + len(a.patches)*2 + len(a.trims)*4
}

// Find returns the index of the node named name (lowercase wire format)
// whose hash is h, or None. It allocates nothing.
func (z *Zone) Find(name []byte, h uint32) uint32 { return z.find(name, h) }

func (z *Zone) find(name []byte, h uint32) uint32 {
	index, mask := z.index, z.mask
	if p := z.prov; p != nil {
		v := p.v.Load()
		if v.base != nil {
			return v.find(z, name, h)
		}
		index, mask = v.slots, v.mask
	}
	i := slotOf(h, mask)
	for {
		s := index[i]
		if s.node == 0 {
			return None
		}
		if s.hash == h {
			n := &z.nodes[s.node-1]
			if int(n.Len) == len(name) && bytes.Equal(z.names[n.Name:n.Name+uint32(n.Len)], name) {
				return s.node - 1
			}
		}
		i = (i + 1) & mask
	}
}

// FindChild returns the node whose name is the label (length byte first)
// followed by the name of node parent, or None. Used for wildcard lookups.
func (z *Zone) FindChild(label []byte, parent uint32, parentHash uint32) uint32 {
	h := HashLabel(parentHash, label)
	p := &z.nodes[parent]
	pn := z.names[p.Name : p.Name+uint32(p.Len)]
	index, mask := z.index, z.mask
	if p := z.prov; p != nil {
		v := p.v.Load()
		if v.base != nil {
			var buf [255]byte
			if len(label)+len(pn) > len(buf) {
				return None
			}
			n := copy(buf[:], label)
			n += copy(buf[n:], pn)
			return v.find(z, buf[:n], h)
		}
		index, mask = v.slots, v.mask
	}
	i := slotOf(h, mask)
	for {
		s := index[i]
		if s.node == 0 {
			return None
		}
		if s.hash == h {
			n := &z.nodes[s.node-1]
			if int(n.Len) == len(label)+len(pn) {
				nm := z.names[n.Name : n.Name+uint32(n.Len)]
				if bytes.Equal(nm[:len(label)], label) && bytes.Equal(nm[len(label):], pn) {
					return s.node - 1
				}
			}
		}
		i = (i + 1) & mask
	}
}

// SetOf returns the index of node n's RRset of type t, or None.
func (z *Zone) SetOf(n *Node, t uint16) uint32 {
	for i := n.Set0; i < n.Set0+uint32(n.NSets); i++ {
		if z.sets[i].Type == t {
			return i
		}
	}
	return None
}

// arenas hold prepared answers: the blocks, the wire bytes they point into,
// their compression patches and trims (see Block). A zone's table has one
// set; the proof blocks of its NSEC or NSEC3 chain have another, laid out
// alike, so that one block writer serves both.
type arenas struct {
	blocks  []Block
	wire    []byte
	patches []uint16
	trims   []Trim
}

// slotOf is the first index slot probed for a name of hash h: the hash is
// multiplied by a Fibonacci constant so that its high bits reach the slot
// number too. Every index and name table of the package probes from here.
func slotOf(h, mask uint32) uint32 { return (h * 0x9E3779B1) & mask }

// buildIndex makes the zone's name index from its nodes, in as many parts
// at once as the zone is large enough for (buildIndexParts).
func (z *Zone) buildIndex() { z.buildIndexParts(sortParts(len(z.nodes))) }
