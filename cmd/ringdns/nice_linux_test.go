package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

func TestStatNice(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want int
	}{
		{"1 (ringdns) S 0 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 7 0 12 0 0", 0},
		{"42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 30 10 1 0 5 0 0", 10},
		{"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 0 -20 1 0 5 0 0", -20},
	} {
		got, err := statNice(tc.stat)
		if err != nil || got != tc.want {
			t.Errorf("statNice(%q) = %d, %v; want %d", tc.stat, got, err, tc.want)
		}
	}
	if _, err := statNice("1 (short) S 0"); err == nil {
		t.Error("statNice of a short line: no error")
	}
}

// taskNices returns the nice value of every thread of this process.
func taskNices(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		n, err := statNice(string(b))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = n
	}
	return out
}

// TestNiceEnv: a process that may return to its nice (root here) asks the
// new binary of an upgrade to load at a lower priority and to return to
// its own nice then.
func TestNiceEnv(t *testing.T) {
	testenv.RequireRoot(t, "returning to a lower nice value needs CAP_SYS_NICE")
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	if base+startNiceStep > 19 {
		t.Skipf("this test runs at nice %d, too high to go %d lower", base, startNiceStep)
	}
	if got, want := strings.Join(niceEnv(), " "), envNice+"="+strconv.Itoa(base); got != want {
		t.Errorf("niceEnv() = %q, want %q", got, want)
	}
}

// TestSetAllNice: a new binary lowers every thread it has, and those its
// runtime makes later follow; once loaded every thread returns to the old
// process's nice, those made while it was lowered included.
func TestSetAllNice(t *testing.T) {
	testenv.RequireRoot(t, "returning to a lower nice value needs CAP_SYS_NICE")
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	if base+5 > 19 {
		t.Skipf("this test runs at nice %d, too high to go 5 lower", base)
	}
	defer setAllNice(base)
	if err := setAllNice(base + 5); err != nil {
		t.Fatal(err)
	}
	for tid, n := range taskNices(t) {
		if n != base+5 {
			t.Errorf("thread %s at nice %d after setAllNice(%d)", tid, n, base+5)
		}
	}
	// Threads made while lowered: goroutines locked to threads of their
	// own make the runtime start some.
	var wg, started sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			started.Done()
			<-release
		}()
	}
	started.Wait()
	close(release)
	wg.Wait()
	if err := setAllNice(base); err != nil {
		t.Fatal(err)
	}
	for tid, n := range taskNices(t) {
		if n != base {
			t.Errorf("thread %s at nice %d after setAllNice(%d)", tid, n, base)
		}
	}
}

// TestLowerAfterHandover: the old process of an upgrade, once it has
// handed over, runs every thread startNiceStep lower (19 at most).
func TestLowerAfterHandover(t *testing.T) {
	testenv.RequireRoot(t, "returning to a lower nice value needs CAP_SYS_NICE")
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	defer setAllNice(base)
	if err := lowerAfterHandover(); err != nil {
		t.Fatal(err)
	}
	want := min(base+startNiceStep, 19)
	for tid, n := range taskNices(t) {
		if n != want {
			t.Errorf("thread %s at nice %d after lowerAfterHandover from %d, want %d", tid, n, base, want)
		}
	}
}
