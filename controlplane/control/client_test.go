package control

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClientClosedBeforeReply checks what the client says when the
// daemon closes the connection without a reply, which is what it does to a
// connection over its hard bound: the path and the likely reason, not
// "broken pipe" or "EOF".
func TestClientClosedBeforeReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
	}{
		{"closed at once", func(c net.Conn) { c.Close() }},
		{"closed after reading the request", func(c net.Conn) {
			bufio.NewReader(c).ReadBytes('\n')
			c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					tc.serve(c)
				}
			}()
			c, err := Dial(path, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Do(Request{Cmd: "status"}, nil)
			if err == nil {
				t.Fatal("Do succeeded without a reply")
			}
			for _, want := range []string{path, "closed the connection before replying", "too many control connections", fmt.Sprint(MaxConns)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
