package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/controlplane/control"
)

// TestRingctlRSSAC checks ringctl rssac002 against a stand-in daemon: the
// date goes as the request's one argument, the documents come out on
// stdout as they are, and what they do not cover on stderr; bad arguments
// are refused before anything is sent.
func TestRingctlRSSAC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const yaml = "---\nversion: rssac002v3\nservice: x\nstart-period: 2026-12-05T00:00:00Z\nmetric: traffic-volume\n"
	reqs := make(chan control.Request, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadBytes('\n')
			var req control.Request
			json.Unmarshal(line, &req)
			reqs <- req
			rep := control.RSSACReport{Date: "2026-12-05", YAML: yaml}
			if len(req.Zones) == 0 {
				rep.Date, rep.Partial, rep.Since = "2026-12-06", true, "2026-12-06T01:02:03Z"
			}
			b, _ := json.Marshal(control.OKReply(rep))
			c.Write(append(b, '\n'))
			c.Close()
		}
	}()
	for _, c := range []struct {
		args           []string
		code           int
		zones          []string
		stdout, stderr string
	}{
		{[]string{"rssac002", "-date", "2026-12-05"}, 0, []string{"2026-12-05"}, yaml, ""},
		{[]string{"rssac002"}, 0, nil, yaml, "2026-12-06 so far, counted since ringdns started at 2026-12-06T01:02:03Z"},
		{[]string{"rssac002", "-date", "2026-12-32"}, 2, nil, "", "want YYYY-MM-DD"},
		{[]string{"rssac002", "2026-12-05"}, 2, nil, "", "takes -date YYYY-MM-DD and nothing else"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"-s", path}, c.args...), &stdout, &stderr)
		if code != c.code || stdout.String() != c.stdout || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("ringctl %v: exit %d, want %d\nstdout: %q\nstderr: %q", c.args, code, c.code, stdout.String(), stderr.String())
		}
		if c.code != 0 {
			continue
		}
		req := <-reqs
		if req.Cmd != control.CmdRSSAC002 || strings.Join(req.Zones, " ") != strings.Join(c.zones, " ") {
			t.Errorf("ringctl %v sent %+v", c.args, req)
		}
	}
	select {
	case req := <-reqs:
		t.Errorf("a refused command sent %+v", req)
	default:
	}
}
