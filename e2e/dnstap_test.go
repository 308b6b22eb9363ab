package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// tapRecord is one dnstap message as dnstap-ldns -y prints it, reduced to
// what the tests compare.
type tapRecord struct {
	Identity, Version           string
	Type, Family, Protocol      string
	QueryAddr, ResponseAddr     string
	QueryPort, ResponsePort     int
	ID                          int
	Rcode, Question             string // of the message logged
	HasQueryTime, HasRespTime   bool
	HasQueryMsg, HasResponseMsg bool
}

func (r tapRecord) String() string {
	return fmt.Sprintf("%s %s %s %s:%d -> %s:%d id %d %s %s", r.Type, r.Family, r.Protocol, r.QueryAddr, r.QueryPort,
		r.ResponseAddr, r.ResponsePort, r.ID, r.Question, r.Rcode)
}

// readTap runs dnstap-ldns -y -r on a Frame Streams file and parses what it
// prints: YAML documents separated by ---, each message's DNS text inside.
func readTap(t *testing.T, ldns, file string) []tapRecord {
	t.Helper()
	out, err := exec.Command(ldns, "-y", "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-ldns -y -r %s: %v\n%s", file, err, out)
	}
	var recs []tapRecord
	var r *tapRecord
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	unquote := func(s string) string { return strings.Trim(s, `"`) }
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ": ")
		switch {
		case line == "---":
			r = nil
		case line == "type: MESSAGE":
			recs = append(recs, tapRecord{})
			r = &recs[len(recs)-1]
		case r == nil:
			t.Fatalf("dnstap-ldns printed %q before a message", line)
		case key == "identity":
			r.Identity = unquote(val)
		case key == "version":
			r.Version = unquote(val)
		case key == "type":
			r.Type = val
		case key == "socket_family":
			r.Family = val
		case key == "socket_protocol":
			r.Protocol = val
		case key == "query_address":
			r.QueryAddr = unquote(val)
		case key == "response_address":
			r.ResponseAddr = unquote(val)
		case key == "query_port":
			r.QueryPort, _ = strconv.Atoi(val)
		case key == "response_port":
			r.ResponsePort, _ = strconv.Atoi(val)
		case key == "query_time":
			r.HasQueryTime = true
		case key == "response_time":
			r.HasRespTime = true
		case line == "query_message: |":
			r.HasQueryMsg = true
		case line == "response_message: |":
			r.HasResponseMsg = true
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			// ";; ->>HEADER<<- opcode: QUERY, rcode: NOERROR, id: 41539"
			for _, f := range strings.Split(strings.TrimPrefix(line, ";; ->>HEADER<<- "), ", ") {
				k, v, _ := strings.Cut(f, ": ")
				switch k {
				case "rcode":
					r.Rcode = v
				case "id":
					r.ID, _ = strconv.Atoi(v)
				}
			}
		case strings.HasPrefix(line, ";") && !strings.HasPrefix(line, ";;") && r.Question == "":
			r.Question = strings.Join(strings.Fields(strings.TrimPrefix(line, ";")), " ")
		}
	}
	return recs
}

// tapAsk sends one query from a socket of its own, so that its source port
// is known, and returns the dnstap messages an authoritative server logs
// for it: AUTH_QUERY and AUTH_RESPONSE, as readTap parses them.
func tapAsk(t *testing.T, server netip.AddrPort, tcp bool, name string, qtype uint16, identity, version string) (aq, ar tapRecord) {
	t.Helper()
	aq, ar, err := tapExchange(server, tcp, name, qtype, identity, version)
	if err != nil {
		t.Fatal(err)
	}
	return aq, ar
}

// tapExchange is tapAsk for a goroutine of its own (netns.Do).
func tapExchange(server netip.AddrPort, tcp bool, name string, qtype uint16, identity, version string) (aq, ar tapRecord, err error) {
	c, err := net.Dial(netOf(tcp, server.Addr().Is6()), server.String())
	if err != nil {
		return aq, ar, err
	}
	defer c.Close()
	co := &dns.Conn{Conn: c}
	r, err := connExchange(co, name, qtype)
	if err != nil {
		return aq, ar, fmt.Errorf("%s %s: %w", name, dns.TypeToString[qtype], err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	fam, proto := "INET", "UDP"
	if server.Addr().Is6() {
		fam = "INET6"
	}
	if tcp {
		proto = "TCP"
	}
	aq = tapRecord{Identity: identity, Version: version, Type: "AUTH_QUERY", Family: fam, Protocol: proto,
		QueryAddr: local.Addr().String(), QueryPort: int(local.Port()), ResponseAddr: server.Addr().String(),
		ResponsePort: int(server.Port()), ID: int(r.Id), Rcode: "NOERROR",
		Question: name + " IN " + dns.TypeToString[qtype], HasQueryTime: true, HasQueryMsg: true}
	ar = aq
	ar.Type, ar.Rcode, ar.HasRespTime, ar.HasQueryMsg, ar.HasResponseMsg = "AUTH_RESPONSE", dns.RcodeToString[r.Rcode], true, false, true
	return aq, ar, nil
}

// compareTap checks that the messages read are exactly those wanted, in
// any order (the workers' rings are drained in turn).
func compareTap(t *testing.T, got, want []tapRecord) {
	t.Helper()
	key := func(r tapRecord) string { return fmt.Sprintf("%#v", r) }
	var g, w []string
	for _, r := range got {
		g = append(g, key(r))
	}
	for _, r := range want {
		w = append(w, key(r))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("dnstap-ldns read %d messages, want %d", len(got), len(want))
		for _, r := range got {
			if !slices.Contains(w, key(r)) {
				t.Errorf("unexpected: %v (%+v)", r, r)
			}
		}
		for _, r := range want {
			if !slices.Contains(g, key(r)) {
				t.Errorf("missing:    %v (%+v)", r, r)
			}
		}
	}
}

func tapTools(t *testing.T) (capture, ldns string) {
	capture = testenv.RequireTool(t, "fstrm_capture", "Debian package fstrm-bin; scripts/test.sh installs it")
	ldns = testenv.RequireTool(t, "dnstap-ldns", "Debian package dnstap-ldns; scripts/test.sh installs it")
	return capture, ldns
}

// TestDnstapCapture: ringdns logs to fstrm_capture's Unix socket with the
// bidirectional handshake; dnstap-ldns reads what fstrm_capture wrote and
// finds each query sent over UDP (IPv4, IPv6) and TCP, and its answer, with
// names, types, rcodes, IDs, addresses and ports as sent, and the
// configured identity and version. The collector is started after
// ringdns, so ringdns connects on a retry.
func TestDnstapCapture(t *testing.T) {
	t.Parallel()
	capture, ldns := tapTools(t)
	dir := t.TempDir()
	sock, file := filepath.Join(dir, "tap.sock"), filepath.Join(dir, "tap.fstrm")
	conf := filepath.Join(dir, "ringdns.toml")
	text := fmt.Sprintf("[[zone]]\norigin = \"example.\"\nfile = %q\n\n[dnstap]\nsocket = %q\nidentity = \"ns-test\"\nversion = \"v-test\"\n",
		exampleZone(), sock)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "-config", conf, "-metrics", "127.0.0.1:0")

	col := exec.Command(capture, "-t", "protobuf:dnstap.Dnstap", "-u", sock, "-w", file)
	colOut := &syncBuffer{}
	col.Stdout, col.Stderr = colOut, colOut
	if err := col.Start(); err != nil {
		t.Fatal(err)
	}
	colDone := make(chan struct{})
	go func() {
		col.Wait()
		close(colDone)
	}()
	defer func() {
		col.Process.Kill()
		<-colDone
		if t.Failed() {
			t.Logf("fstrm_capture:\n%s", colOut.String())
		}
	}()
	// ringdns retries every second when idle, with a pause of at most
	// 5 s after failures: 20 s is a bound for a loaded machine.
	if !poll(20*time.Second, func() bool { return strings.Contains(d.out.String(), "dnstap collector connected") }) {
		t.Fatal("ringdns did not connect to fstrm_capture within 20 s")
	}

	var want []tapRecord
	for _, q := range []struct {
		v6, tcp bool
		name    string
		qtype   uint16
	}{
		{false, false, "www.example.", dns.TypeA},
		{true, false, "www.example.", dns.TypeAAAA},
		{false, false, "nothere.example.", dns.TypeA},
		{true, false, "example.", dns.TypeSOA},
		{false, true, "example.", dns.TypeNS},
		{true, true, "nothere.example.", dns.TypeTXT},
	} {
		aq, ar := tapAsk(t, d.addr(q.v6), q.tcp, q.name, q.qtype, "ns-test", "v-test")
		want = append(want, aq, ar)
	}
	if !poll(20*time.Second, func() bool {
		m, _ := scrape(t, d.status.Metrics)
		n, _ := sumMetric(m, "ringdns_dnstap_sent_total")
		return n == float64(len(want))
	}) {
		m, _ := scrape(t, d.status.Metrics)
		n, _ := sumMetric(m, "ringdns_dnstap_sent_total")
		t.Fatalf("ringdns_dnstap_sent_total %v, want %d", n, len(want))
	}
	m, _ := scrape(t, d.status.Metrics)
	if n, k := sumMetric(m, "ringdns_dnstap_dropped_total"); n != 0 || k == 0 {
		t.Errorf("ringdns_dnstap_dropped_total %v over %d series, want 0", n, k)
	}
	// ringdns ends the stream with STOP and waits for FINISH; then
	// fstrm_capture, stopped, closes its file with STOP.
	if err := d.stop(); err != nil {
		t.Fatalf("ringdns: %v", err)
	}
	col.Process.Signal(syscall.SIGTERM)
	select {
	case <-colDone:
	case <-time.After(10 * time.Second):
		t.Fatal("fstrm_capture did not exit within 10 s of SIGTERM")
	}
	compareTap(t, readTap(t, ldns, file), want)

	// The quiet format too: one line per message, its mnemonic, protocol
	// and question.
	out, err := exec.Command(ldns, "-r", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-ldns -r: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != len(want) ||
		!strings.Contains(string(out), `AQ 127.0.0.1 UDP`) || !strings.Contains(string(out), `AR ::1 TCP`) ||
		!strings.Contains(string(out), `"nothere.example." IN TXT`) {
		t.Errorf("dnstap-ldns -r printed:\n%s", out)
	}
}

// TestDnstapFile: ringdns writes a Frame Streams file (unidirectional:
// START ... STOP) that dnstap-ldns reads; ringctl reload after the file
// is renamed finishes it and starts a new one (rotation), and the
// filters hold: responses only, of the rcodes and types listed.
func TestDnstapFile(t *testing.T) {
	t.Parallel()
	_, ldns := tapTools(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tap.fstrm")
	conf := filepath.Join(dir, "ringdns.toml")
	text := fmt.Sprintf("[[zone]]\norigin = \"example.\"\nfile = %q\n\n[dnstap]\nfile = %q\nidentity = \"\"\nlog-queries = false\n"+
		"rcodes = [\"NOERROR\", \"NXDOMAIN\"]\nqtypes = [\"A\", \"AAAA\", \"TYPE6\"]\n", exampleZone(), file)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "-config", conf, "-metrics", "127.0.0.1:0")
	version := "ringdns " + d.status.Version
	ask := func(v6, tcp bool, name string, qtype uint16, logged bool) []tapRecord {
		_, ar := tapAsk(t, d.addr(v6), tcp, name, qtype, "", version)
		if !logged {
			return nil
		}
		return []tapRecord{ar}
	}
	waitSent := func(n int) {
		t.Helper()
		if !poll(20*time.Second, func() bool {
			m, _ := scrape(t, d.status.Metrics)
			s, _ := sumMetric(m, "ringdns_dnstap_sent_total")
			return s == float64(n)
		}) {
			t.Fatalf("ringdns_dnstap_sent_total did not reach %d within 20 s", n)
		}
	}
	var first, second []tapRecord
	first = append(first, ask(false, false, "www.example.", dns.TypeA, true)...)
	first = append(first, ask(true, false, "nothere.example.", dns.TypeAAAA, true)...)
	first = append(first, ask(false, false, "www.example.", dns.TypeMX, false)...) // a type not listed
	first = append(first, ask(false, true, "example.", dns.TypeSOA, true)...)
	waitSent(len(first))
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	if out, code := d.ringctl("reload"); code != 0 {
		t.Fatalf("ringctl reload: exit status %d\n%s", code, out)
	}
	second = append(second, ask(true, false, "example.", dns.TypeSOA, true)...)
	second = append(second, ask(false, false, "nothere.example.", dns.TypeMX, false)...)
	waitSent(len(first) + len(second))
	if err := d.stop(); err != nil {
		t.Fatalf("ringdns: %v", err)
	}
	compareTap(t, readTap(t, ldns, file+".1"), first)
	compareTap(t, readTap(t, ldns, file), second)
}
