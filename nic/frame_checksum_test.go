package nic

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ringdns/ringdns/internal/onessum"
)

// refSum is the plain RFC 1071 loop: 16-bit big-endian words, an odd last
// byte padded with a zero, carries folded back at the end. It shares no
// code with onessum.
func refSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// refVerify is VerifyChecksums written from the RFCs, byte by byte: the
// IPv4 header sums to all ones; a zero UDP checksum passes over IPv4 and
// fails over IPv6; otherwise the pseudo-header followed by the datagram
// sums to all ones, or the checksum field holds the pseudo-header's folded
// sum (the kernel's CHECKSUM_PARTIAL form).
func refVerify(b []byte, f *Frame) bool {
	udpLen := udpHeaderLen + f.PayloadLen
	udp := b[f.L4 : f.L4+udpLen]
	field := uint16(udp[6])<<8 | uint16(udp[7])
	var pseudo []byte
	if f.IPv6 {
		if field == 0 {
			return false
		}
		pseudo = append(pseudo, b[f.L3+8:f.L3+40]...)
		pseudo = append(pseudo, 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, protoUDP)
	} else {
		if refSum(b[f.L3:f.L3+20]) != 0xffff {
			return false
		}
		if field == 0 {
			return true
		}
		pseudo = append(pseudo, b[f.L3+12:f.L3+20]...)
		pseudo = append(pseudo, 0, protoUDP, byte(udpLen>>8), byte(udpLen))
	}
	if refSum(append(append([]byte(nil), pseudo...), udp...)) == 0xffff {
		return true
	}
	return refSum(pseudo) == field
}

// checksumCase is a frame that parses, and whether its checksums verify.
type checksumCase struct {
	name   string
	spec   frameSpec
	mutate func(b []byte, f Frame) // edits the built frame, whose offsets are f
	ok     bool
}

func (c *checksumCase) frame() []byte {
	b := c.spec.build()
	if c.mutate != nil {
		f, ok := ParseFrame(b, 53)
		if !ok {
			panic(fmt.Sprintf("%s: the built frame does not parse", c.name))
		}
		c.mutate(b, f)
	}
	return b
}

// setUDPSum stores v in the UDP checksum field.
func setUDPSum(v uint16) func([]byte, Frame) {
	return func(b []byte, f Frame) { binary.BigEndian.PutUint16(b[f.L4+6:], v) }
}

// flip inverts one bit of the byte at offset i of the DNS payload (from
// its end when i is negative).
func flip(i int) func([]byte, Frame) {
	return func(b []byte, f Frame) {
		if i < 0 {
			i += f.PayloadLen
		}
		b[f.Payload+i] ^= 0x10
	}
}

// partialSum stores in the UDP checksum field what Linux leaves there for
// the device to finish (CHECKSUM_PARTIAL): the folded sum of the
// pseudo-header, not complemented.
func partialSum(b []byte, f Frame) {
	udpLen := udpHeaderLen + f.PayloadLen
	var pseudo []byte
	if f.IPv6 {
		pseudo = append(append(pseudo, b[f.L3+8:f.L3+40]...), 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, protoUDP)
	} else {
		pseudo = append(append(pseudo, b[f.L3+12:f.L3+20]...), 0, protoUDP, byte(udpLen>>8), byte(udpLen))
	}
	binary.BigEndian.PutUint16(b[f.L4+6:], refSum(pseudo))
}

// fixIPv4 recomputes the IPv4 header checksum after an edit of the header.
func fixIPv4(b []byte, f Frame) {
	ip := b[f.L3 : f.L3+20]
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^refSum(ip))
}

// both applies edits in order.
func both(edits ...func([]byte, Frame)) func([]byte, Frame) {
	return func(b []byte, f Frame) {
		for _, e := range edits {
			e(b, f)
		}
	}
}

// zeroSumPayload is a 24-byte payload whose UDP checksum, from the default
// addresses and ports of frameSpec over the family v6, computes to zero:
// its last word is chosen to make the datagram and pseudo-header sum to all
// ones, so that the sender stores the zero as 0xffff (RFC 768).
func zeroSumPayload(v6 bool) []byte {
	p := append(append([]byte(nil), testQuery[:20]...), 0, 0, 0, 0)
	b := frameSpec{v6: v6, payload: p}.build()
	f, _ := ParseFrame(b, 53)
	// With the last word zero the checksum is c = ^S; a last word of c
	// makes the sum S + ^S = all ones, whose checksum is zero.
	copy(p[22:], b[f.L4+6:f.L4+8])
	return p
}

// checksumCases drives TestVerifyChecksums and seeds FuzzParseFrame.
var checksumCases = []checksumCase{
	{name: "ipv4 valid", ok: true},
	{name: "ipv6 valid", spec: frameSpec{v6: true}, ok: true},
	{name: "ipv4 vlan valid", spec: frameSpec{vlan: 1}, ok: true},
	{name: "ipv6 vlan valid", spec: frameSpec{v6: true, vlan: 1}, ok: true},
	{name: "ipv4 padded valid", spec: frameSpec{pad: 9}, ok: true},
	{name: "ipv4 empty payload", spec: frameSpec{payload: []byte{}}, ok: true},
	{name: "ipv6 empty payload", spec: frameSpec{v6: true, payload: []byte{}}, ok: true},
	{name: "ipv4 payload 1 byte", spec: frameSpec{payload: []byte{0xa7}}, ok: true},
	{name: "ipv6 payload 33 bytes", spec: frameSpec{v6: true, payload: make33()}, ok: true},
	{name: "ipv4 payload 1232 bytes", spec: frameSpec{payload: make1232()}, ok: true},

	{name: "ipv4 payload bit flipped", mutate: flip(5), ok: false},
	{name: "ipv6 payload bit flipped", spec: frameSpec{v6: true}, mutate: flip(5), ok: false},
	{name: "ipv4 odd last byte flipped", mutate: flip(-1), ok: false},
	{name: "ipv6 odd last byte flipped", spec: frameSpec{v6: true, payload: make33()}, mutate: flip(-1), ok: false},
	{name: "ipv4 long payload last byte flipped", spec: frameSpec{payload: make1232()}, mutate: flip(-1), ok: false},
	{name: "ipv4 padding not summed", spec: frameSpec{pad: 9}, mutate: func(b []byte, f Frame) { b[len(b)-1] ^= 0xff }, ok: true},
	{name: "ipv4 checksum off by one", mutate: func(b []byte, f Frame) { b[f.L4+7]++ }, ok: false},
	{name: "ipv4 source port changed", mutate: func(b []byte, f Frame) { b[f.L4+1]++ }, ok: false},
	// The pseudo-header is covered: an address changed in transit, the
	// IPv4 header checksum recomputed, fails the UDP checksum.
	{name: "ipv4 source address changed", mutate: both(func(b []byte, f Frame) { b[f.L3+15]++ }, fixIPv4), ok: false},
	{name: "ipv6 destination address changed", spec: frameSpec{v6: true}, mutate: func(b []byte, f Frame) { b[f.L3+39]++ }, ok: false},

	// Zero: no checksum over IPv4, whatever the datagram holds; invalid
	// over IPv6.
	{name: "ipv4 zero checksum", mutate: setUDPSum(0), ok: true},
	{name: "ipv4 zero checksum payload flipped", mutate: both(setUDPSum(0), flip(3)), ok: true},
	{name: "ipv6 zero checksum", spec: frameSpec{v6: true}, mutate: setUDPSum(0), ok: false},
	// A checksum that computes to zero is sent as 0xffff and verifies;
	// the same frame with 0x0000 is "no checksum" over IPv4 and invalid
	// over IPv6; 0xffff where the checksum is not zero is wrong.
	{name: "ipv4 computed zero sent as 0xffff", spec: frameSpec{payload: zeroSumPayload(false)}, mutate: expectField(0xffff), ok: true},
	{name: "ipv6 computed zero sent as 0xffff", spec: frameSpec{v6: true, payload: zeroSumPayload(true)}, mutate: expectField(0xffff), ok: true},
	{name: "ipv4 computed zero sent as 0", spec: frameSpec{payload: zeroSumPayload(false)}, mutate: setUDPSum(0), ok: true},
	{name: "ipv6 computed zero sent as 0", spec: frameSpec{v6: true, payload: zeroSumPayload(true)}, mutate: setUDPSum(0), ok: false},
	{name: "ipv4 0xffff not the checksum", mutate: setUDPSum(0xffff), ok: false},
	{name: "ipv6 0xffff not the checksum", spec: frameSpec{v6: true}, mutate: setUDPSum(0xffff), ok: false},

	// The kernel's unfinished checksum (a veth from a local socket).
	{name: "ipv4 partial checksum", mutate: partialSum, ok: true},
	{name: "ipv6 partial checksum", spec: frameSpec{v6: true}, mutate: partialSum, ok: true},
	{name: "ipv6 partial checksum odd payload", spec: frameSpec{v6: true, payload: make33()}, mutate: partialSum, ok: true},
	{name: "ipv4 partial checksum off by one", mutate: both(partialSum, func(b []byte, f Frame) { b[f.L4+7]++ }), ok: false},

	// The IPv4 header checksum.
	{name: "ipv4 header checksum wrong", mutate: func(b []byte, f Frame) { b[f.L3+11]++ }, ok: false},
	{name: "ipv4 header ttl changed", mutate: func(b []byte, f Frame) { b[f.L3+8]-- }, ok: false},
	{name: "ipv4 header wrong, udp zero", mutate: both(setUDPSum(0), func(b []byte, f Frame) { b[f.L3+11]++ }), ok: false},
	{name: "ipv4 header ttl changed and fixed", mutate: both(func(b []byte, f Frame) { b[f.L3+8]-- }, fixIPv4), ok: true},
}

// make33 is testQuery with an OPT record, 33 bytes: an odd length whose
// last byte sums as the high byte of a padded word.
func make33() []byte {
	return append(append([]byte(nil), testQuery...), 0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 0, 0x5a)
}

// make1232 is a 1232-byte payload, the largest EDNS message commonly
// advertised, ending in a non-zero byte.
func make1232() []byte { b := make([]byte, 1232); copy(b, testQuery); b[1231] = 0x77; return b }

// expectField checks that the built frame carries v in its checksum field,
// so that a case meant to cover a representation does.
func expectField(v uint16) func([]byte, Frame) {
	return func(b []byte, f Frame) {
		if got := binary.BigEndian.Uint16(b[f.L4+6:]); got != v {
			panic(fmt.Sprintf("built frame has checksum %#04x, want %#04x", got, v))
		}
	}
}

// TestVerifyChecksums runs real frames, IPv4 and IPv6, through
// VerifyChecksums, the reference and Headers.Strip: valid and invalid
// sums, zero over each family, odd payload lengths, the two
// representations of zero, the kernel's partial form and the IPv4 header
// checksum. Strip must refuse exactly the frames whose checksums fail,
// count each, and leave their packet as it was.
func TestVerifyChecksums(t *testing.T) {
	h := NewHeaders(53, 1500, 1)
	for _, c := range checksumCases {
		t.Run(c.name, func(t *testing.T) {
			b := c.frame()
			f, ok := ParseFrame(b, 53)
			if !ok {
				t.Fatalf("frame does not parse: % x", b)
			}
			if got := refVerify(b, &f); got != c.ok {
				t.Fatalf("reference says %v, the case %v (the table is wrong)", got, c.ok)
			}
			if got := VerifyChecksums(b, &f); got != c.ok {
				t.Fatalf("VerifyChecksums = %v, want %v (frame % x)", got, c.ok, b)
			}
			buf := make([]byte, 4096)
			n := copy(buf, b)
			before := h.ChecksumDrops()
			p := Packet{Len: -5, Sum: 9}
			if got := h.Strip(0, buf, n, &p); got != c.ok {
				t.Fatalf("Strip = %v, want %v", got, c.ok)
			}
			drops := h.ChecksumDrops() - before
			if c.ok && drops != 0 || !c.ok && (drops != 1 || p.Len != -5 || p.Sum != 9 || p.Buf != nil) {
				t.Fatalf("Strip counted %d checksum drops and left the packet %+v", drops, p)
			}
		})
	}
}

// TestVerifyChecksumsRandom checks VerifyChecksums against the reference
// on valid frames of every payload length up to 600 with random contents
// and addresses, each also with one random bit of its datagram flipped,
// which no ones'-complement checksum misses (and the reference decides
// anyway).
func TestVerifyChecksumsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 7720))
	for n := 0; n <= 600; n++ {
		for _, v6 := range []bool{false, true} {
			spec := randomSpec(rng, v6, n)
			b := spec.build()
			f, ok := ParseFrame(b, 53)
			if !ok {
				t.Fatalf("%d bytes IPv6 %v: does not parse", n, v6)
			}
			// The frame alone, and in a buffer with random bytes after
			// it, as a UMEM chunk holds it, which the sums read whole
			// words of and must ignore.
			padded := append(b[:len(b):len(b)], make([]byte, 64)...)
			for i := len(b); i < len(padded); i++ {
				padded[i] = byte(rng.Uint32())
			}
			if !VerifyChecksums(b, &f) || !VerifyChecksums(padded, &f) || !refVerify(b, &f) {
				t.Fatalf("%d bytes IPv6 %v: a valid frame fails (fast %v, padded %v, reference %v)", n, v6, VerifyChecksums(b, &f), VerifyChecksums(padded, &f), refVerify(b, &f))
			}
			bit := rng.IntN(8 * (8 + n))
			b[f.L4+bit/8] ^= 1 << (bit % 8)
			padded[f.L4+bit/8] ^= 1 << (bit % 8)
			if got, pgot, want := VerifyChecksums(b, &f), VerifyChecksums(padded, &f), refVerify(b, &f); got != want || pgot != want {
				t.Fatalf("%d bytes IPv6 %v, bit %d flipped: %v (padded %v), reference %v", n, v6, bit, got, pgot, want)
			}
		}
	}
}

// TestSumWords checks the word sums Strip uses (sumWords, and sumWords64
// for datagrams of up to 64 bytes), with their masked last words, against
// the reference for every length up to 300 with random bytes, and random
// bytes past the end that they must ignore.
func TestSumWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1071))
	buf := make([]byte, 320)
	for n := 0; n <= 300; n++ {
		for range 8 {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			if i := rng.IntN(n + 1); i < n && rng.IntN(2) == 0 {
				buf[i] = 0xff // all ones words carry the most
			}
			d := buf[:n&^7+8]
			got := bits.ReverseBytes16(uint16(onessum.Reduce(sumWords(d, n))))
			if want := refSum(buf[:n]); got != want {
				t.Fatalf("%d bytes: sumWords folds to %#04x, want %#04x", n, got, want)
			}
			if n <= 64 {
				got := bits.ReverseBytes16(uint16(onessum.Reduce(sumWords64(buf[:64], n))))
				if want := refSum(buf[:n]); got != want {
					t.Fatalf("%d bytes: sumWords64 folds to %#04x, want %#04x", n, got, want)
				}
			}
		}
	}
	ones := bytes.Repeat([]byte{0xff}, 304)
	for n := 0; n <= 296; n++ {
		if got, want := bits.ReverseBytes16(uint16(onessum.Reduce(sumWords(ones, n)))), refSum(ones[:n]); got != want {
			t.Fatalf("%d bytes of all ones: %#04x, want %#04x", n, got, want)
		}
		if got, want := bits.ReverseBytes16(uint16(onessum.Reduce(sumWords64(ones[:64], min(n, 64))))), refSum(ones[:min(n, 64)]); got != want {
			t.Fatalf("%d bytes of all ones: sumWords64 %#04x, want %#04x", min(n, 64), got, want)
		}
	}
}

// randomSpec returns a frame spec with a random payload of n bytes and
// random unicast addresses and ports.
func randomSpec(rng *rand.Rand, v6 bool, n int) frameSpec {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	spec := frameSpec{v6: v6, payload: payload, sport: uint16(1024 + rng.IntN(60000))}
	if v6 {
		var a, c [16]byte
		binary.BigEndian.PutUint64(a[:], 0xfd53<<48|rng.Uint64()>>16)
		binary.BigEndian.PutUint64(a[8:], rng.Uint64())
		binary.BigEndian.PutUint64(c[:], 0x2001<<48|rng.Uint64()>>16)
		binary.BigEndian.PutUint64(c[8:], rng.Uint64())
		spec.src, spec.dst = netip.AddrFrom16(a), netip.AddrFrom16(c)
	} else {
		spec.src = netip.AddrFrom4([4]byte{198, 18, byte(rng.Uint32()), byte(rng.Uint32())})
		spec.dst = netip.AddrFrom4([4]byte{192, 0, 2, 1 + byte(rng.IntN(254))})
	}
	return spec
}

// FuzzVerifyChecksums compares the fast verification (onessum's eight
// bytes at a time, the headers summed from word loads) with the plain
// reference on frames built from the fuzzer's payload and addresses, with
// the checksum field either computed or taken from the fuzzer, and one of
// the datagram's bytes changed or not.
func FuzzVerifyChecksums(f *testing.F) {
	f.Add([]byte("query"), false, uint64(1), uint64(2), false, uint16(0), uint16(0), byte(0))
	f.Add(make33(), true, uint64(3), uint64(4), false, uint16(0), uint16(7), byte(0x80))
	f.Add([]byte{}, true, uint64(5), uint64(6), true, uint16(0), uint16(0), byte(0))
	f.Add([]byte{1}, false, uint64(7), uint64(8), true, uint16(0xffff), uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, payload []byte, v6 bool, a, c uint64, setField bool, field, at uint16, x byte) {
		if len(payload) > 1400 {
			payload = payload[:1400]
		}
		spec := frameSpec{v6: v6, payload: payload, sport: uint16(a), dport: 53}
		if spec.sport == 0 {
			spec.sport = 1
		}
		if v6 {
			var s, d [16]byte
			binary.BigEndian.PutUint64(s[:], 0xfd53<<48|a>>16)
			binary.BigEndian.PutUint64(s[8:], c)
			binary.BigEndian.PutUint64(d[:], 0x2001<<48|c>>16)
			binary.BigEndian.PutUint64(d[8:], a)
			spec.src, spec.dst = netip.AddrFrom16(s), netip.AddrFrom16(d)
		} else {
			spec.src = netip.AddrFrom4([4]byte{198, 18, byte(a), byte(a >> 8)})
			spec.dst = netip.AddrFrom4([4]byte{10, byte(c), byte(c >> 8), byte(c >> 16)})
		}
		b := spec.build()
		fr, ok := ParseFrame(b, 53)
		if !ok {
			return
		}
		if setField {
			binary.BigEndian.PutUint16(b[fr.L4+6:], field)
		}
		if n := 8 + fr.PayloadLen; n > 0 {
			b[fr.L4+int(at)%n] ^= x
		}
		if got, want := VerifyChecksums(b, &fr), refVerify(b, &fr); got != want {
			t.Fatalf("VerifyChecksums %v, reference %v: % x", got, want, b)
		}
		if !setField && x == 0 && !VerifyChecksums(b, &fr) {
			t.Fatalf("an untouched frame fails: % x", b)
		}
	})
}

// TestVerifyChecksumsAllocs pins the verification to zero allocations.
func TestVerifyChecksumsAllocs(t *testing.T) {
	b := frameSpec{v6: true, payload: make1232()}.build()
	f, _ := ParseFrame(b, 53)
	if n := testing.AllocsPerRun(100, func() { VerifyChecksums(b, &f) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// rootQueries are root-server queries as resolvers send them, with EDNS
// (bufsize 1232, DO set, and a client cookie on the second): the frames
// BenchmarkStrip strips.
var rootQueries = [][]byte{
	// "com. NS", EDNS DO.
	{0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 3, 'c', 'o', 'm', 0, 0, 2, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0},
	// "example-of-a-tld. DS", EDNS DO with an 8-byte client cookie.
	{0xbe, 0xf0, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 16, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '-', 'o', 'f', '-', 'a', '-', 't', 'l', 'd', 0, 0, 43, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8},
}

// BenchmarkStrip measures Headers.Strip per frame on root queries over
// IPv4 and IPv6: parsing the headers, verifying the checksums, the payload
// room and the peer. Run it on the commit before checksum verification
// (copying this file there, without the VerifyChecksums benchmark) to see
// the verification's cost per packet.
func BenchmarkStrip(b *testing.B) {
	// mixed: 64 frames, IPv4 and IPv6 in turn, with payloads of 28 to 91
	// bytes in a random order, as the question names of real queries
	// vary: the branches on the length cannot be learnt.
	rng := rand.New(rand.NewPCG(64, 64))
	var mixed [][]byte
	for i, n := range rng.Perm(64) {
		q := append(append([]byte(nil), rootQueries[1]...), make([]byte, 64)...)[:28+n]
		mixed = append(mixed, frameSpec{v6: i%2 == 1, payload: q}.build())
	}
	for _, v6 := range []int{0, 1, 2} {
		var frames [][]byte
		for _, q := range rootQueries {
			frames = append(frames, frameSpec{v6: v6 == 1, payload: q}.build())
		}
		name := [...]string{"ipv4", "ipv6", "mixed"}[v6]
		if v6 == 2 {
			frames = mixed
		}
		b.Run(name, func(b *testing.B) {
			h := NewHeaders(53, 1500, 64)
			slab := make([]byte, 64*2048)
			for i := range 64 {
				copy(slab[i*2048:], frames[i%len(frames)])
			}
			pkts := make([]Packet, 64)
			b.ReportAllocs()
			for b.Loop() {
				for i := range pkts {
					buf := slab[i*2048 : (i+1)*2048]
					h.Strip(i, buf, len(frames[i%len(frames)]), &pkts[i])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
		})
	}
}

// BenchmarkVerifyChecksums measures the verification alone on the root
// queries of BenchmarkStrip and on a 1232-byte datagram.
func BenchmarkVerifyChecksums(b *testing.B) {
	for _, c := range []struct {
		name    string
		v6      bool
		payload []byte
	}{
		{"ipv4-root", false, rootQueries[1]},
		{"ipv6-root", true, rootQueries[1]},
		{"ipv6-1232", true, make1232()},
	} {
		fr := frameSpec{v6: c.v6, payload: c.payload}.build()
		f, _ := ParseFrame(fr, 53)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ok := true
			for b.Loop() {
				ok = ok && VerifyChecksums(fr, &f)
			}
			if !ok {
				b.Fatal("the frame does not verify")
			}
		})
	}
}
