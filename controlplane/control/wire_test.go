package control

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden replies in testdata/")

// wireSamples are a value of every request, reply and command result with
// every field set, so that each JSON name appears in the golden files.
func wireSamples() map[string]any {
	xdp := XDPStats{RxDropped: 1, RxInvalidDescs: 2, TxInvalidDescs: 3, RxRingFull: 4, RxFillRingEmptyDescs: 5,
		TxRingEmptyDescs: 6, RxPackets: 7, RxNotQuery: 8, TxPackets: 9, TxRingFull: 10, TxBadLen: 11, KickErrors: 12, RxBadChecksum: 13}
	counters := Counters{Queries: 100, Replies: 99, Bytes: 5000, TC: 2, DO: 30, SendErrs: 1,
		Rcodes: map[string]uint64{"NOERROR": 90, "NXDOMAIN": 9}, Kinds: map[string]uint64{"answer": 90, "nxdomain": 9},
		Drops: map[string]uint64{"reflection-port": 1}}
	zr := ZoneResult{Origin: "example.", File: "/etc/ringdns/example.zone", Status: StatusFailed,
		Error: "example.zone:12:3: bad TTL", Line: 12, Serving: true, Serial: 2026120501, Records: 321, Bytes: 65536,
		Seconds: 0.25, Warnings: []string{"NSEC chain has a gap after a.example."}}
	return map[string]any{
		"request": Request{Cmd: CmdReload, Zones: []string{"example.", "test."}},
		"reply": Reply{OK: false, Error: "1 of 1 zones failed to load; their previous versions are served",
			Data: json.RawMessage(`{"failed":1}`)},
		"status": Status{Version: "0.1.0-dev", PID: 4242, Uptime: 61.5, Listen: []string{"127.0.0.1:5353", "[::1]:5353"},
			Control: "/run/ringdns/ringdns.sock", Metrics: "127.0.0.1:9153", DataPlane: "sockets", Workers: 2,
			CPUs: []int{0, 1}, ZonesServing: 1, ZonesFailing: 1, ZonesTotal: 2, Reloads: 3, ReloadFailures: 1,
			LastSwapMicros: 0.5, GoVersion: "go1.26.8"},
		"zones": []ZoneStatus{{Origin: "example.", File: "/etc/ringdns/example.zone", Serving: true, Serial: 2026120501,
			Records: 321, Bytes: 65536, Loaded: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC), Seconds: 0.25,
			LastError: "example.zone:12:3: bad TTL", Loads: 3, Failures: 1}},
		"zone-status": []ZoneTransferStatus{{Origin: "example.", File: "/var/lib/ringdns/example.zone", Role: "secondary",
			Serving: true, Serial: 2026120502, Primaries: []string{"192.0.2.1:53"}, Key: "xfr-key.", Expired: false,
			LastRefresh: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC), NextRefresh: time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC),
			Expires: time.Date(2026, 12, 19, 14, 0, 0, 0, time.UTC), LastError: "SOA query to 192.0.2.2:53 over udp: i/o timeout",
			Transfers: 3, Failures: 1, Notifies: 2,
			LastTransfer: &TransferStatus{Kind: "IXFR", Primary: "192.0.2.1:53", Started: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC),
				Seconds: 0.02, Bytes: 1234, Serial: 2026120502, Result: "ok"}}},
		"refresh": RefreshResult{Origin: "example.", Action: "AXFR"},
		"reload":  ReloadResult{Zones: []ZoneResult{zr}, Failed: 1, BuildMicros: 120.5, SwapMicros: 0.25, Seconds: 0.3},
		"stats": Stats{Total: counters,
			Workers: []WorkerStats{
				{Name: "xdp0", Kind: "xdp", Listen: "veth0@53", CPU: 0, Queue: 0, Counters: counters, XDP: &xdp},
				{Name: "udp0", Kind: "udp", Listen: "127.0.0.1:5353", CPU: 1, Queue: -1, Counters: Counters{}},
			},
			TCP: TCPStats{Accepted: 1, Refused: 2, PerSource: 3, Evicted: 4, Garbage: 5, Timeouts: 6, Open: 7}},
	}
}

// TestWireFormat pins the JSON of every request, reply and result to
// testdata/NAME.json: scripts read these names through ringctl -json, so a
// change must be an addition made on purpose (go test -update), never a
// rename that slips through with a refactoring.
func TestWireFormat(t *testing.T) {
	for name, v := range wireSamples() {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s changed (go test -update rewrites it if that is meant):\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
