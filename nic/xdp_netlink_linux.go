package nic

import (
	"encoding/binary"
	"fmt"
	"iter"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the little rtnetlink the AF_XDP backend needs: asking which
// XDP program an interface runs (to refuse or replace a foreign one) and
// detaching a program attached through netlink. Netlink messages are in host
// byte order.

// nativeEndian is the host byte order, which netlink uses.
var nativeEndian = binary.NativeEndian

func nativeUint32(b []byte) uint32 { return nativeEndian.Uint32(b) }

func nativeBytes32(v uint32) []byte { return nativeEndian.AppendUint32(nil, v) }

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// nlAppendAttr appends one attribute (struct nlattr and padded value) to b.
func nlAppendAttr(b []byte, typ uint16, val []byte) []byte {
	b = nativeEndian.AppendUint16(b, uint16(unix.SizeofNlAttr+len(val)))
	b = nativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

type nlAttr struct {
	typ uint16 // with the NLA_F_NESTED and byte-order bits cleared
	val []byte
}

// nlAttrs iterates over the attributes in b, stopping at the first malformed one.
func nlAttrs(b []byte) iter.Seq[nlAttr] {
	return func(yield func(nlAttr) bool) {
		for len(b) >= unix.SizeofNlAttr {
			l := int(nativeEndian.Uint16(b[0:2]))
			typ := nativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if l < unix.SizeofNlAttr || l > len(b) {
				return
			}
			if !yield(nlAttr{typ: typ, val: b[unix.SizeofNlAttr:l]}) {
				return
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
}

// nlIfinfoRequest builds a netlink message with an ifinfomsg for ifindex and
// the given attributes.
func nlIfinfoRequest(typ uint16, flags uint16, ifindex int, attrs []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg+len(attrs))
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_UNSPEC
	nativeEndian.PutUint32(ifi[4:8], uint32(int32(ifindex)))
	b = append(b, ifi...)
	b = append(b, attrs...)
	nativeEndian.PutUint32(b[0:4], uint32(len(b)))
	nativeEndian.PutUint16(b[4:6], typ)
	nativeEndian.PutUint16(b[6:8], flags)
	nativeEndian.PutUint32(b[8:12], 1) // sequence number
	return b
}

type nlMessage struct {
	hdrType uint16
	data    []byte
}

// nlRoundTrip sends req on a new rtnetlink socket (in the calling thread's
// network namespace) and collects the answer: every message up to the
// first one that is not part of a multipart reply, or up to the ACK. A
// negative ACK becomes an error carrying the kernel's extended message.
func nlRoundTrip(req []byte) ([]nlMessage, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(s)
	// Extended ACKs carry the kernel's explanation ("Native and generic XDP
	// can't be active at the same time"), which is what a person can act on.
	unix.SetsockoptInt(s, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	unix.SetsockoptInt(s, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var out []nlMessage
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(s, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		b := buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(nativeEndian.Uint32(b[0:4]))
			typ := nativeEndian.Uint16(b[4:6])
			flags := nativeEndian.Uint16(b[6:8])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return nil, fmt.Errorf("netlink: malformed message")
			}
			data := b[unix.SizeofNlMsghdr:l]
			switch typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(data) < 4 {
					return nil, fmt.Errorf("netlink: short error message")
				}
				code := int32(nativeEndian.Uint32(data[0:4]))
				if code == 0 {
					return out, nil
				}
				err := error(unix.Errno(-code))
				if flags&unix.NLM_F_ACK_TLVS != 0 && len(data) >= 4+unix.SizeofNlMsghdr {
					for a := range nlAttrs(data[4+unix.SizeofNlMsghdr:]) {
						if a.typ == unix.NLMSGERR_ATTR_MSG {
							err = fmt.Errorf("%w: %s", err, strings.TrimRight(string(a.val), "\x00"))
						}
					}
				}
				return nil, err
			default:
				out = append(out, nlMessage{hdrType: typ, data: append([]byte(nil), data...)})
				if flags&unix.NLM_F_MULTI == 0 {
					// A single answer to a GET; no DONE follows.
					return out, nil
				}
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
}
