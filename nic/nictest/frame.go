package nictest

import (
	"encoding/binary"
	"net/netip"

	"github.com/ringdns/ringdns/internal/onessum"
)

// The MAC addresses of the frames Frame builds: locally administered
// unicast addresses, as a client and a server on one link.
var (
	ClientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	ServerMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
)

// Frame returns an Ethernet frame from ClientMAC to ServerMAC carrying
// payload in a UDP datagram from one address and port to another, of one
// family: IPv4 without options (TTL 64, DF) or IPv6 without extension
// headers (hop limit 64), with valid IPv4 header and UDP checksums. It is
// the frame an Ethernet Ring replays, built independently of the nic code
// that parses it.
func Frame(from, to netip.AddrPort, payload []byte) []byte {
	src, dst := from.Addr().Unmap(), to.Addr().Unmap()
	if src.Is4() != dst.Is4() {
		panic("nictest: Frame needs two addresses of one family")
	}
	udpLen := 8 + len(payload)
	b := make([]byte, 0, 14+40+udpLen)
	b = append(b, ServerMAC[:]...)
	b = append(b, ClientMAC[:]...)
	var pseudo []byte
	if src.Is4() {
		b = append(b, 0x08, 0x00)
		ip := len(b)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(20+udpLen))
		b = append(b, 0, 0, 0x40, 0, 64, 17, 0, 0)
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
		binary.BigEndian.PutUint16(b[ip+10:], onessum.Checksum(b[ip:]))
		pseudo = append(append(pseudo, b[ip+12:ip+20]...), 0, 17, byte(udpLen>>8), byte(udpLen))
	} else {
		b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
		b = append(b, 17, 64)
		b = append(b, src.AsSlice()...)
		b = append(b, dst.AsSlice()...)
		pseudo = append(append(pseudo, src.AsSlice()...), dst.AsSlice()...)
		pseudo = append(pseudo, 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, 17)
	}
	l4 := len(b)
	b = binary.BigEndian.AppendUint16(b, from.Port())
	b = binary.BigEndian.AppendUint16(b, to.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, payload...)
	c := onessum.Fold(onessum.Sum(b[l4:], onessum.Sum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[l4+6:], c)
	return b
}
