package dnstap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// field is one protobuf field as decodeProto reads it: a varint's or a
// fixed32's value, or a length-delimited field's bytes.
type field struct {
	num, wire int
	v         uint64
	b         []byte
}

// decodeProto is a protobuf decoder for the wire types the encoder
// writes, written from the format's description rather than from the
// encoder, so that the two check each other.
func decodeProto(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			t.Fatalf("bad tag at %x", b)
		}
		b = b[n:]
		f := field{num: int(tag >> 3), wire: int(tag & 7)}
		switch f.wire {
		case 0:
			f.v, n = binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("field %d: bad varint", f.num)
			}
			b = b[n:]
		case 5:
			if len(b) < 4 {
				t.Fatalf("field %d: short fixed32", f.num)
			}
			f.v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				t.Fatalf("field %d: bad length", f.num)
			}
			f.b, b = b[n:n+int(l)], b[n+int(l):]
		default:
			t.Fatalf("field %d: wire type %d", f.num, f.wire)
		}
		out = append(out, f)
	}
	return out
}

// fieldMap indexes fields by number; every field must appear once.
func fieldMap(t *testing.T, fs []field) map[int]field {
	t.Helper()
	m := map[int]field{}
	for _, f := range fs {
		if _, dup := m[f.num]; dup {
			t.Fatalf("field %d twice", f.num)
		}
		m[f.num] = f
	}
	return m
}

func TestAppendFrame(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 20000) // a nested length of three varint bytes
	for _, tc := range []struct {
		name              string
		identity, version string
		m                 Message
		want              map[int]uint64 // varint and fixed32 fields of Message
		wantBytes         map[int][]byte // bytes fields of Message
	}{
		{
			name: "query over IPv4 UDP", identity: "ns1", version: "ringdns 1",
			m: Message{Type: AuthQuery, Protocol: UDP, QueryAddr: netip.MustParseAddr("198.18.0.2"),
				ResponseAddr: netip.MustParseAddr("198.18.0.1"), QueryPort: 40000, ResponsePort: 53,
				QueryTime: 1_700_000_000_123_456_789, QueryMessage: []byte("query")},
			want:      map[int]uint64{1: 1, 2: 1, 3: 1, 6: 40000, 7: 53, 8: 1_700_000_000, 9: 123_456_789},
			wantBytes: map[int][]byte{4: {198, 18, 0, 2}, 5: {198, 18, 0, 1}, 10: []byte("query")},
		},
		{
			name: "response over IPv6 TCP, no identity", version: "v",
			m: Message{Type: AuthResponse, Protocol: TCP, QueryAddr: netip.MustParseAddr("fd53::2"), QueryPort: 1,
				QueryTime: 5, ResponseTime: 2_000_000_007, ResponseMessage: []byte("reply")},
			want:      map[int]uint64{1: 2, 2: 2, 3: 2, 6: 1, 8: 0, 9: 5, 12: 2, 13: 7},
			wantBytes: map[int][]byte{4: netip.MustParseAddr("fd53::2").AsSlice(), 14: []byte("reply")},
		},
		{
			name: "mapped IPv4 is written as IPv4",
			m:    Message{Type: AuthQuery, QueryAddr: netip.MustParseAddr("::ffff:192.0.2.1")},
			want: map[int]uint64{1: 1, 2: 1}, wantBytes: map[int][]byte{4: {192, 0, 2, 1}},
		},
		{
			name: "long response", identity: "x",
			m:         Message{Type: AuthResponse, ResponseMessage: long},
			want:      map[int]uint64{1: 2},
			wantBytes: map[int][]byte{14: long},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("kept")
			b := AppendFrame(append([]byte(nil), prefix...), []byte(tc.identity), []byte(tc.version), &tc.m)
			if !bytes.HasPrefix(b, prefix) {
				t.Fatal("the bytes before the frame were changed")
			}
			b = b[len(prefix):]
			if n := binary.BigEndian.Uint32(b); int(n) != len(b)-4 {
				t.Fatalf("frame length %d, payload %d", n, len(b)-4)
			}
			env := fieldMap(t, decodeProto(t, b[4:]))
			if f := env[15]; f.wire != 0 || f.v != 1 {
				t.Errorf("Dnstap.type = %+v, want MESSAGE (1)", f)
			}
			for num, want := range map[int]string{1: tc.identity, 2: tc.version} {
				f, ok := env[num]
				if want == "" && ok || want != "" && string(f.b) != want {
					t.Errorf("Dnstap field %d = %q (present %v), want %q", num, f.b, ok, want)
				}
			}
			if _, ok := env[3]; ok {
				t.Error("extra is set")
			}
			msg := fieldMap(t, decodeProto(t, env[14].b))
			for num, f := range msg {
				if f.wire == 2 {
					if want, ok := tc.wantBytes[num]; !ok || !bytes.Equal(f.b, want) {
						t.Errorf("Message field %d = %x, want %x", num, f.b, want)
					}
				} else if want, ok := tc.want[num]; !ok || f.v != want {
					t.Errorf("Message field %d = %d, want %d (listed %v)", num, f.v, want, ok)
				}
			}
			for num := range tc.want {
				if _, ok := msg[num]; !ok {
					t.Errorf("Message field %d missing", num)
				}
			}
			for num := range tc.wantBytes {
				if _, ok := msg[num]; !ok {
					t.Errorf("Message field %d missing", num)
				}
			}
		})
	}
}

// TestAppendFrameNoAlloc: the writer encodes into one buffer it reuses.
func TestAppendFrameNoAlloc(t *testing.T) {
	m := Message{Type: AuthResponse, Protocol: UDP, QueryAddr: netip.MustParseAddr("fd53::2"), QueryPort: 4,
		QueryTime: 1, ResponseTime: 2, ResponseMessage: make([]byte, 300)}
	buf := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(100, func() { buf = AppendFrame(buf[:0], []byte("id"), []byte("v"), &m) }); a != 0 {
		t.Errorf("AppendFrame: %v allocations", a)
	}
}

func TestControlFrames(t *testing.T) {
	b := AppendControl(nil, ControlReady, ContentType, "other")
	want := []byte{0, 0, 0, 0, 0, 0, 0, byte(4 + 8 + len(ContentType) + 8 + 5), 0, 0, 0, 4,
		0, 0, 0, 1, 0, 0, 0, byte(len(ContentType))}
	want = append(want, ContentType...)
	want = append(want, 0, 0, 0, 1, 0, 0, 0, 5)
	want = append(want, "other"...)
	if !bytes.Equal(b, want) {
		t.Fatalf("READY\n got %x\nwant %x", b, want)
	}
	c, err := ReadControl(bytes.NewReader(b))
	if err != nil || c.Type != ControlReady || len(c.ContentTypes) != 2 || c.ContentTypes[0] != ContentType || c.ContentTypes[1] != "other" {
		t.Fatalf("ReadControl = %+v, %v", c, err)
	}
	for _, bad := range []struct {
		name string
		b    []byte
	}{
		{"data frame", []byte{0, 0, 0, 9, 0, 0, 0, 0}},
		{"too long", []byte{0, 0, 0, 0, 0, 0, 2, 1}},
		{"too short", []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0}},
		{"field past the frame", []byte{0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9}},
		{"truncated", []byte{0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1}},
	} {
		if _, err := ReadControl(bytes.NewReader(bad.b)); err == nil {
			t.Errorf("%s: no error", bad.name)
		}
	}
	if _, err := ReadControl(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Errorf("empty: %v", err)
	}
}

// BenchmarkAppendFrame is the writer's cost per message: a referral of
// 300 bytes over IPv6 with identity and version.
func BenchmarkAppendFrame(b *testing.B) {
	m := Message{Type: AuthResponse, Protocol: UDP, QueryAddr: netip.MustParseAddr("fd53::2"), QueryPort: 40000,
		ResponseAddr: netip.MustParseAddr("fd53::1"), ResponsePort: 53, QueryTime: 1, ResponseTime: 2,
		ResponseMessage: make([]byte, 300)}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], []byte("ns1.example"), []byte("ringdns 0.1"), &m)
	}
}
