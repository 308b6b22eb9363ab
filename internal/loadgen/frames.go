package loadgen

import (
	"encoding/binary"
	"encoding/hex"
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
	// Cookie, when set, is the data of a COOKIE option (RFC 7873: a
	// client cookie, and the server cookie the server gave) that every
	// query carries, with EDNS.
	Cookie []byte
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
	// ownSrc is the frames' source address (4 or 16 bytes); spoof, when
	// valid, the prefix PutSpoofed sends from, as spoofBase and the mask
	// of the host bits it draws.
	ownSrc    [16]byte
	spoof     netip.Prefix
	spoofBase [16]byte
	spoofMask uint32
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
	copy(f.ownSrc[:], src.AsSlice())
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
		if q.EDNS != EDNSDefault || do || size > 0 || o.Cookie != nil {
			if size == 0 {
				size = 1232
			}
			m.SetEdns0(size, do)
		}
		if o.Cookie != nil {
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(o.Cookie)})
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

// Spoof makes PutSpoofed send from the addresses of p, a prefix of the
// frames' family (a /24 of IPv4 spreads a flood over 256 sources, as a
// reflection attack on that network would): the host bits of each copy
// are drawn by the caller. It fails for a prefix of the other family or
// with no host bits.
func (f *Frames) Spoof(p netip.Prefix) error {
	a := p.Addr().Unmap()
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	if !p.IsValid() || a.Is4() != (f.l4 == 14+20) || bits >= a.BitLen() {
		return fmt.Errorf("spoofed prefix %v: want a prefix with host bits, of the server's family", p)
	}
	p = netip.PrefixFrom(a, bits).Masked()
	f.spoof = p
	copy(f.spoofBase[:], p.Addr().AsSlice())
	// The host bits drawn, at most the last 32.
	host := min(a.BitLen()-bits, 32)
	f.spoofMask = uint32(1<<host - 1)
	return nil
}

// Spoofed returns the prefix PutSpoofed sends from, invalid when none.
func (f *Frames) Spoofed() netip.Prefix { return f.spoof }

// FromOwn reports whether a reply frame b (whose UDP header is at l4) is
// addressed to the frames' own source address rather than a spoofed one.
func (f *Frames) FromOwn(b []byte) bool {
	if f.l4 == 14+20 {
		return len(b) >= 14+20 && string(b[14+16:14+20]) == string(f.ownSrc[:4])
	}
	return len(b) >= 14+40 && string(b[14+24:14+40]) == string(f.ownSrc[:16])
}

// PutSpoofed is Put from the spoofed source address whose host bits (the
// last 32 at most) are host: the copy's source address is rewritten and
// its IPv4 header and UDP checksums updated for the change (RFC 1624).
func (f *Frames) PutSpoofed(dst []byte, i int, sport, id uint16, host uint32) int {
	n := f.Put(dst, i, sport, id)
	var src [16]byte
	alen := 4
	at := 14 + 12
	if f.l4 != 14+20 {
		alen, at = 16, 14+8
	}
	copy(src[:alen], f.spoofBase[:alen])
	h := binary.BigEndian.Uint32(src[alen-4:])
	a := h&^f.spoofMask | host&f.spoofMask
	if a == binary.BigEndian.Uint32(f.ownSrc[alen-4:alen]) && string(src[:alen-4]) == string(f.ownSrc[:alen-4]) {
		// Never the own address, whose replies are counted apart
		// (Spoof leaves at least one host bit).
		a ^= 1
	}
	binary.BigEndian.PutUint32(src[alen-4:], a)
	// The checksums as they are, complemented back to sums, plus the
	// difference of each 16-bit word: the new word plus the old one's
	// complement.
	usum := uint32(^binary.BigEndian.Uint16(dst[f.l4+6:]))
	isum := uint32(^binary.BigEndian.Uint16(dst[14+10:]))
	for w := 0; w < alen; w += 2 {
		d := uint32(^binary.BigEndian.Uint16(dst[at+w:])) + uint32(binary.BigEndian.Uint16(src[w:]))
		usum += d
		isum += d
	}
	copy(dst[at:at+alen], src[:alen])
	c := onessum.Fold(usum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(dst[f.l4+6:], c)
	if alen == 4 {
		binary.BigEndian.PutUint16(dst[14+10:], onessum.Fold(isum))
	}
	return n
}

// avgPayload is the mean DNS payload of the frames, the size of a query
// for the amplification of a spoofed run (exact when every frame holds
// the same query, as a reflection attack sends).
func (f *Frames) avgPayload() float64 {
	var n int
	for _, s := range f.size {
		n += int(s) - f.l4 - 8
	}
	return float64(n) / float64(len(f.size))
}
