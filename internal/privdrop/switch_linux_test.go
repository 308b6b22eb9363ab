//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

// TestSwitch runs Switch in a child process (this test binary again), as
// root, switching to nobody: with nothing kept, and keeping
// CAP_NET_BIND_SERVICE. A binary that links cgo (go test's, whenever cgo
// is on: os/user links it) can do the first only; one without can do
// both. The e2e tests run the daemon built without cgo.
func TestSwitch(t *testing.T) {
	if os.Getenv("PRIVDROP_CHILD") != "" {
		switchChild()
		return
	}
	testenv.RequireRoot(t, "to switch a child process to nobody")
	for _, tc := range []struct {
		keep string
		want CapSet
	}{
		{"none", 0},
		{"bind", Caps(CapNetBindService)},
	} {
		t.Run(tc.keep, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSwitch$")
			// The race detector would sleep a second at exit.
			cmd.Env = append(os.Environ(), "PRIVDROP_CHILD="+tc.keep, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			text := string(out)
			t.Logf("child: %s", text)
			if err != nil {
				t.Fatalf("child: %v", err)
			}
			if !AllThreads() && tc.want != 0 {
				if !strings.Contains(text, "switch: ") || !strings.Contains(text, ErrNotAllThreads.Error()) {
					t.Errorf("a cgo binary kept %s without all-thread calls; want ErrNotAllThreads", tc.want)
				}
				return
			}
			want := fmt.Sprintf("ok uid=[65534 65534 65534 65534] eff=%#x prm=%#x", uint64(tc.want), uint64(tc.want))
			if !strings.Contains(text, want) {
				t.Errorf("child said %q; want %q", text, want)
			}
		})
	}
}

// switchChild is TestSwitch's child: it switches and prints the result
// (Switch itself checks every thread).
func switchChild() {
	id, err := Lookup("nobody", "")
	if err != nil {
		fmt.Println("lookup:", err)
		os.Exit(1)
	}
	keep := CapSet(0)
	if os.Getenv("PRIVDROP_CHILD") == "bind" {
		keep = Caps(CapNetBindService)
	}
	if _, err := Switch(&id, keep); err != nil {
		if errors.Is(err, ErrNotAllThreads) {
			fmt.Println("switch:", err)
			os.Exit(0)
		}
		fmt.Println("switch failed:", err)
		os.Exit(1)
	}
	c, err := ReadStatus("/proc/self/status")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("ok uid=%v eff=%#x prm=%#x\n", c.UID, uint64(c.Eff), uint64(c.Prm))
	os.Exit(0)
}
