package zone

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"

	"github.com/miekg/dns"
)

// MaxLabels bounds the labels of a wire-format name: 255 bytes hold at most
// 127 one-byte labels plus the root.
const MaxLabels = 128

// HashSeed is the hash of the root name. Names are hashed label by label
// starting from the root, so that the hashes of all suffixes of a query name
// come out of one right-to-left pass (see HashLabel).
const HashSeed uint32 = 2166136261

// HashLabel extends the hash of a name by one more label on its left. label
// is the label's length byte followed by its bytes, already lowercase. The
// zone index, the zone set and the answer engine all use it, so one pass
// over a query name serves every lookup.
//
// It reads the label eight bytes at a time rather than byte by byte (as the
// FNV-1a it replaces did, a multiply per byte in one serial chain): a label
// of 4 to 8 bytes, length byte included, is two overlapping 4-byte loads; a
// longer one is 8-byte loads, the last overlapping the one before; a shorter
// one its first, middle and last bytes. The length byte is read in every
// case, so each such word determines the label's bytes. Each word is mixed
// into the hash with one 64x64->128-bit multiply whose halves are xored,
// which spreads every input bit over the low bits the index takes.
func HashLabel(h uint32, label []byte) uint32 {
	x := uint64(h)
	n := len(label)
	var w uint64
	switch {
	case n > 8:
		for i := 0; i < n-8; i += 8 {
			x = mulFold(binary.LittleEndian.Uint64(label[i:])^hashK0, x^hashK1)
		}
		w = binary.LittleEndian.Uint64(label[n-8:])
	case n >= 4:
		w = uint64(binary.LittleEndian.Uint32(label)) | uint64(binary.LittleEndian.Uint32(label[n-4:]))<<32
	default:
		w = uint64(label[0]) | uint64(label[n>>1])<<8 | uint64(label[n-1])<<16
	}
	x = mulFold(w^hashK0, x^hashK1)
	return uint32(x) ^ uint32(x>>32)
}

// The multipliers of HashLabel: odd 64-bit constants with well-spread bits
// (the first two of wyhash's), far from any word a label loads.
const (
	hashK0 = 0xa0761d6478bd642f
	hashK1 = 0xe7037ed1a0b428db
)

// mulFold returns the xor of the two halves of the 128-bit product a*b.
func mulFold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hashName hashes a lowercase wire-format name (root-first, as HashLabel).
func hashName(name []byte) uint32 {
	var offs [MaxLabels]int
	n := 0
	for i := 0; name[i] != 0; i += int(name[i]) + 1 {
		offs[n] = i
		n++
	}
	h := HashSeed
	for k := n - 1; k >= 0; k-- {
		o := offs[k]
		h = HashLabel(h, name[o:o+int(name[o])+1])
	}
	return h
}

// lowerASCII maps A-Z to a-z and leaves every other byte alone, as DNS name
// comparison requires (RFC 4343).
func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// lowerWireBytes lowercases the wire name w in place and returns it. Every
// byte is mapped through one table, length bytes included: a label is at
// most 63 bytes long, so no length byte is an ASCII capital. It is
// lowerInto without the walk over the labels, for the parser's owners.
func lowerWireBytes(w []byte) []byte {
	for i, c := range w {
		w[i] = lowerTable[c]
	}
	return w
}

// lowerTable maps A-Z to a-z and every other byte to itself.
var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = lowerASCII(byte(i))
	}
	return
}()

// toWire converts a presentation-format absolute name into wire format,
// keeping its case.
func toWire(name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// lowerWire returns a lowercase copy of a wire-format name.
func lowerWire(w []byte) []byte { return lowerInto(make([]byte, len(w)), w) }

// countLabels is the number of labels of a wire name, the root not counted.
func countLabels(w []byte) int {
	n := 0
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		n++
	}
	return n
}

// parentWire strips the leftmost label of a wire name.
func parentWire(w []byte) []byte { return w[int(w[0])+1:] }

// isSubdomain reports whether child equals or lies below parent (both
// lowercase wire format).
func isSubdomain(child, parent []byte) bool {
	if len(child) < len(parent) || !bytes.Equal(child[len(child)-len(parent):], parent) {
		return false
	}
	// The match must start on a label boundary of child.
	for i := 0; i < len(child); i += int(child[i]) + 1 {
		if i == len(child)-len(parent) {
			return true
		}
	}
	return false
}

// CompareCanonical orders two lowercase wire-format names as RFC 4034
// section 6.1 does: label by label from the rightmost, each label compared
// as an unsigned octet string with a shorter prefix first.
func CompareCanonical(a, b []byte) int {
	var ao, bo [MaxLabels]int
	na, nb := 0, 0
	for i := 0; a[i] != 0; i += int(a[i]) + 1 {
		ao[na] = i
		na++
	}
	for i := 0; b[i] != 0; i += int(b[i]) + 1 {
		bo[nb] = i
		nb++
	}
	for na > 0 && nb > 0 {
		na--
		nb--
		la := a[ao[na]+1 : ao[na]+1+int(a[ao[na]])]
		lb := b[bo[nb]+1 : bo[nb]+1+int(b[bo[nb]])]
		if c := bytes.Compare(la, lb); c != 0 {
			return c
		}
	}
	switch {
	case na > 0:
		return 1
	case nb > 0:
		return -1
	}
	return 0
}

// wireString renders a wire name for messages.
func wireString(w []byte) string {
	s, _, err := dns.UnpackDomainName(w, 0)
	if err != nil {
		return strings.TrimSpace(string(w))
	}
	return s
}
