package controlplane

import (
	"strings"
	"testing"
	"time"
)

// TestXfrPacer holds the pacer of server.transfers-out-rate to its rate:
// ten messages of 64 KiB at ten such messages a second take at least
// 0.8 s (the first goes at once and one more may go ahead of its turn).
// Only the lower bound is checked: a sleep never ends early, but a loaded
// machine may make it end late.
func TestXfrPacer(t *testing.T) {
	p := &xfrPacer{rate: 10 * 65535}
	start := time.Now()
	for range 10 {
		p.wait(65535)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("10 messages of 64 KiB at 640 KiB/s took %v, want at least 0.8 s", d)
	}
	// After a pause the pacer does not let a burst of the time idle go at
	// once: the next ten take as long again.
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	for range 10 {
		p.wait(65535)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("after a pause, 10 messages took %v, want at least 0.8 s", d)
	}
}

func TestTransfersOutRateConfig(t *testing.T) {
	for _, c := range []struct {
		rate string
		want string // "" for no error
	}{
		{"0", ""},
		{"16000000", ""},
		{"-1", "must be bytes per second"},
		{"1000", "under 65536 bytes per second"},
	} {
		cfg, err := ParseConfig([]byte("[server]\nlisten = [\"127.0.0.1:53\"]\ntransfers-out-rate = "+c.rate+"\n"), "test.toml")
		if err == nil {
			err = cfg.Normalize()
		}
		if c.want == "" && err != nil {
			t.Errorf("transfers-out-rate = %s: %v", c.rate, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("transfers-out-rate = %s: error %v, want one saying %q", c.rate, err, c.want)
		}
	}
}
