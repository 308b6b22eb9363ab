package dataplane

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// expireQuery packs a query for name and type with EDNS and, when asked,
// the EXPIRE option (RFC 7314) and NSID.
func expireQuery(name string, t uint16, expire, nsid bool) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	o := m.SetEdns0(1232, false).IsEdns0()
	if expire {
		o.Option = append(o.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	}
	if nsid {
		o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}
	q, _ := m.Pack()
	return q
}

// replyExpire returns the EXPIRE option's value in the reply, or -1.
func replyExpire(t *testing.T, reply []byte) int64 {
	t.Helper()
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil {
		t.Fatal(err)
	}
	if o := r.IsEdns0(); o != nil {
		for _, op := range o.Option {
			if e, ok := op.(*dns.EDNS0_EXPIRE); ok {
				return int64(e.Expire)
			}
		}
	}
	return -1
}

// TestExpireOption: an authoritative answer to a query with the EDNS
// EXPIRE option carries it, with a primary zone's SOA expire field or the
// seconds left to a secondary zone; a query without the option, a referral
// and a zone not served get none. The sums of the replies are checked too,
// with NSID of an odd length after the option.
func TestExpireOption(t *testing.T) {
	s, _ := snapshots(t)
	var at atomic.Int64
	primary := NewSnapshotZones(s.Zones(), Config{NSID: []byte("odd"), UDPSize: 1232}, nil, []ZoneExpire{{SOA: 1209600}})
	secondary := NewSnapshotZones(s.Zones(), Config{UDPSize: 1232}, nil, []ZoneExpire{{At: &at}})
	expired := NewSnapshotZones(s.Zones(), Config{UDPSize: 1232}, []bool{true}, []ZoneExpire{{At: &at}})
	at.Store(time.Now().Unix() + 1000)
	dst := make([]byte, 4096)
	for _, tc := range []struct {
		name   string
		snap   *Snapshot
		q      []byte
		lo, hi int64 // the value expected, -1 for no option
	}{
		{"primary", primary, expireQuery("www.example.", dns.TypeA, true, false), 1209600, 1209600},
		{"primary with NSID", primary, expireQuery("example.", dns.TypeSOA, true, true), 1209600, 1209600},
		{"primary NXDOMAIN", primary, expireQuery("nope.example.", dns.TypeA, true, true), 1209600, 1209600},
		{"not asked", primary, expireQuery("www.example.", dns.TypeA, false, true), -1, -1},
		{"referral", primary, expireQuery("x.sub.example.", dns.TypeA, true, false), -1, -1},
		{"not served", primary, expireQuery("junk.", dns.TypeA, true, false), -1, -1},
		// The seconds left: 1000 when the answer is made in the same
		// second as the Store, less on a machine that paused in between.
		{"secondary", secondary, expireQuery("example.", dns.TypeSOA, true, false), 900, 1000},
		{"expired", expired, expireQuery("example.", dns.TypeSOA, true, false), -1, -1},
		{"no states", s, expireQuery("example.", dns.TypeSOA, true, false), -1, -1},
	} {
		for _, tcp := range []bool{false, true} {
			n, sum, _ := tc.snap.answer(dst, tc.q, nil, tcp, true)
			checkAnswerSum(t, dst[:n], sum)
			if got := replyExpire(t, dst[:n]); got < tc.lo || got > tc.hi {
				t.Errorf("%s (tcp %v): EXPIRE %d, want %d..%d", tc.name, tcp, got, tc.lo, tc.hi)
			}
		}
	}
	at.Store(time.Now().Unix() - 5)
	n, _ := secondary.Answer(dst, expireQuery("example.", dns.TypeSOA, true, false), false)
	if got := replyExpire(t, dst[:n]); got != 0 {
		t.Errorf("past its expiry time, not yet marked expired: EXPIRE %d, want 0", got)
	}
	q := expireQuery("www.example.", dns.TypeA, true, true)
	if a := testing.AllocsPerRun(20, func() { secondary.Answer(dst, q, false) }); a != 0 {
		t.Errorf("%v allocations per answer with EXPIRE", a)
	}
}
