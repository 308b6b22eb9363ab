package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/onessum"
)

// Link says where frames go: the addresses of every layer.
type Link struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.Addr // one family
	DstPort        uint16
}

// Options shape the queries.
type Options struct {
	// EDNSSize is the UDP payload size of the OPT record. 0 sends no OPT
	// record, except on lines that ask for one (E or D) or draw DO, which
	// then advertise 1232.
	EDNSSize uint16
	// DOShare is the share of lines without a flag that set DO, drawn once
	// per line when the frames are built.
	DOShare float64
	// RD sets the RD bit.
	RD bool
	// Seed makes the DO draw repeatable.
	Seed uint64
}

// Frames holds every query's Ethernet frame, built once, in one arena. A
// frame's UDP source port, DNS ID and UDP checksum are zero; Put fills them
// in for each copy sent.
type Frames struct {
	arena []byte
	off   []uint32
	size  []uint16
	// sum is each frame's partial ones'-complement sum over the UDP
	// pseudo-header, header and payload, with the port, ID and checksum
	// zero: adding the port and ID gives the checksum of a copy.
	sum []uint32
	do  []bool
	l4  int // offset of the UDP header in every frame
}

// frameLimit bounds a query frame: a name is at most 255 bytes, so any
// query with an OPT record fits with room to spare, in the smallest UMEM
// frame (2048) as well.
const frameLimit = 14 + 40 + 8 + 12 + 256 + 4 + 11

// BuildFrames prepares a frame for each query.
func BuildFrames(qs []Query, l Link, o Options) (*Frames, error) {
	src, dst := l.Src.Unmap(), l.Dst.Unmap()
	if src.Is4() != dst.Is4() || !src.IsValid() || !dst.IsValid() {
		return nil, fmt.Errorf("source %v and destination %v: want two addresses of one family", l.Src, l.Dst)
	}
	if len(l.SrcMAC) != 6 || len(l.DstMAC) != 6 {
		return nil, errors.New("want 6-byte source and destination MAC addresses")
	}
	if len(qs) == 0 {
		return nil, errors.New("no queries")
	}
	f := &Frames{
		off:  make([]uint32, len(qs)),
		size: make([]uint16, len(qs)),
		sum:  make([]uint32, len(qs)),
		do:   make([]bool, len(qs)),
	}
	f.l4 = 14 + 20
	if dst.Is6() {
		f.l4 = 14 + 40
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x72696e67))
	m := new(dns.Msg)
	for i, q := range qs {
		m.SetQuestion(q.Name, q.Type)
		m.Id = 0
		m.RecursionDesired = o.RD
		m.Extra = nil
		size, do := o.EDNSSize, false
		switch q.EDNS {
		case EDNSOn:
		case EDNSDO:
			do = true
		default:
			do = o.DOShare > 0 && rng.Float64() < o.DOShare
		}
		if q.EDNS != EDNSDefault || do || size > 0 {
			if size == 0 {
				size = 1232
			}
			m.SetEdns0(size, do)
		}
		wire, err := m.Pack()
		if err != nil {
			return nil, fmt.Errorf("query %s %s: %w", q.Name, dns.TypeToString[q.Type], err)
		}
		fr := f.frame(l, src, dst, wire)
		if len(fr) > frameLimit {
			return nil, fmt.Errorf("query %s %s: frame of %d bytes", q.Name, dns.TypeToString[q.Type], len(fr))
		}
		f.off[i] = uint32(len(f.arena))
		f.size[i] = uint16(len(fr))
		f.do[i] = do
		f.sum[i] = udpSum(fr[14:f.l4], fr[f.l4:], dst.Is6())
		f.arena = append(f.arena, fr...)
	}
	return f, nil
}

// frame lays out one query frame.
func (f *Frames) frame(l Link, src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 0, f.l4+8+len(payload))
	b = append(b, l.DstMAC...)
	b = append(b, l.SrcMAC...)
	udpLen := 8 + len(payload)
	if dst.Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := len(b)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(20+udpLen))
		b = append(b, 0, 0, 0x40, 0, 64, 17, 0, 0) // ID 0, DF, TTL 64, UDP
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
		binary.BigEndian.PutUint16(b[ip+10:], onessum.Checksum(b[ip:]))
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
		b = append(b, 17, 64)
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
	}
	b = append(b, 0, 0) // source port, set per copy
	b = binary.BigEndian.AppendUint16(b, l.DstPort)
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0) // checksum, set per copy
	return append(b, payload...)
}

// udpSum is the partial sum of the UDP pseudo-header taken from the IP
// header ip and of the segment seg.
func udpSum(ip, seg []byte, v6 bool) uint32 {
	var pseudo [40]byte
	var p []byte
	if v6 {
		copy(pseudo[0:32], ip[8:40])
		binary.BigEndian.PutUint32(pseudo[32:], uint32(len(seg)))
		pseudo[39] = 17
		p = pseudo[:40]
	} else {
		copy(pseudo[0:8], ip[12:20])
		pseudo[9] = 17
		binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
		p = pseudo[:12]
	}
	return onessum.Sum(seg, onessum.Sum(p, 0))
}

// Len is the number of frames.
func (f *Frames) Len() int { return len(f.off) }

// DO reports whether frame i sets DO.
func (f *Frames) DO(i int) bool { return f.do[i] }

// Put copies frame i into dst with source port sport and DNS ID id, and
// returns its length; dst must hold it (frameLimit bytes always do).
func (f *Frames) Put(dst []byte, i int, sport, id uint16) int {
	off, n := f.off[i], int(f.size[i])
	copy(dst[:n], f.arena[off:off+uint32(n)])
	l4 := f.l4
	binary.BigEndian.PutUint16(dst[l4:], sport)
	binary.BigEndian.PutUint16(dst[l4+8:], id)
	c := onessum.Fold(f.sum[i] + uint32(sport) + uint32(id))
	if c == 0 {
		// A computed checksum of zero is sent as all ones: zero means "no
		// checksum" in IPv4 and is invalid in IPv6 (RFC 768, RFC 8200).
		c = 0xffff
	}
	binary.BigEndian.PutUint16(dst[l4+6:], c)
	return n
}
