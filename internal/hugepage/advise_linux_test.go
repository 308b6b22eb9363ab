package hugepage

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/internal/testenv"
)

func TestAnonymousRun(t *testing.T) {
	maps := `00400000-00a05000 r-xp 00000000 fd:01 123 /usr/bin/ringdns
010ac000-030f2000 rw-p 00000000 00:00 0
08dbb000-08ddc000 rw-p 00000000 00:00 0 [heap]
c000000000-c000400000 rw-p 00000000 00:00 0
c000400000-c004000000 ---p 00000000 00:00 0
c004000000-c004200000 rw-p 00000000 00:00 0
c004200000-c008000000 ---p 00000000 00:00 0
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
`
	for _, c := range []struct {
		at    uintptr
		want  []mapping
		found bool
	}{
		{0xc004100000, []mapping{{0xc000000000, 0xc000400000, true}, {0xc000400000, 0xc004000000, false}, {0xc004000000, 0xc004200000, true}, {0xc004200000, 0xc008000000, false}}, true},
		{0xc000000000, []mapping{{0xc000000000, 0xc000400000, true}, {0xc000400000, 0xc004000000, false}, {0xc004000000, 0xc004200000, true}, {0xc004200000, 0xc008000000, false}}, true},
		{0x010ad000, []mapping{{0x010ac000, 0x030f2000, true}}, true},
		{0x08dbc000, nil, false}, // [heap] is the C heap, named
		{0x00500000, nil, false},
	} {
		run, found := anonymousRun(bufio.NewScanner(strings.NewReader(maps)), c.at)
		if found != c.found || found && !slices.Equal(run, c.want) {
			t.Errorf("at %#x: %v %v, want %v %v", c.at, run, found, c.want, c.found)
		}
	}
}

// TestBegin checks that memory the heap maps while a load is begun is
// advised for huge pages, and that the advice is withdrawn at the end.
func TestBegin(t *testing.T) {
	if !madviseMode() {
		t.Skip("transparent huge pages are not in madvise mode here (/sys/kernel/mm/transparent_hugepage/enabled): Begin does nothing")
	}
	end := Begin()
	b := make([]byte, 128<<20)
	// The heap maps the array's memory for it; the next advice covers
	// it, and a load writes most of its arrays after that. How much of
	// it the kernel then gives in huge pages varies (2-160 MiB in runs
	// of this test, for reasons not found), so only the advice is
	// checked; a large zone's load keeps tens of thousands of 4 KiB
	// faults of its 570,000 without huge pages.
	time.Sleep(3 * adviseEvery)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	at := reflect.ValueOf(b).Pointer()
	flags, huge := smapsOf(t, at)
	if !strings.Contains(flags, " hg") {
		t.Errorf("during a load: mapping flags %q of memory the heap mapped after Begin, want hg", flags)
	}
	t.Logf("%d KiB of the array's mapping in huge pages", huge)
	end()
	end() // a second call does nothing
	flags, _ = smapsOf(t, at)
	if strings.Contains(flags, " hg") || !strings.Contains(flags, " nh") {
		t.Errorf("after the load: mapping flags %q, want nh and no hg", flags)
	}
	if users != 0 {
		t.Errorf("users = %d after the load ended", users)
	}
	b[0] = 2
}

// smapsOf returns the VmFlags line and the AnonHugePages (KiB) of the
// mapping that holds at.
func smapsOf(t *testing.T, at uintptr) (flags string, hugeKiB int) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = uintptr(l) <= at && at < uintptr(h)
				continue
			}
		}
		if !in {
			continue
		}
		switch f[0] {
		case "AnonHugePages:":
			hugeKiB, _ = strconv.Atoi(f[1])
		case "VmFlags:":
			return string(line), hugeKiB
		}
	}
	t.Fatalf("no mapping holds %#x", at)
	return "", 0
}

// TestBeginLeavesRoomUntouched checks that arrays made during a load with
// room to grow are resident only as far as they are written: Begin must
// not leave the heap memory it allocated before, which the runtime clears
// whole when it allocates it again (an earlier Begin did, and a large
// zone's peak grew by the room of its arrays in about half of its loads).
func TestBeginLeavesRoomUntouched(t *testing.T) {
	if !madviseMode() {
		t.Skip("transparent huge pages are not in madvise mode here (/sys/kernel/mm/transparent_hugepage/enabled): Begin does nothing")
	}
	// In a process of its own: memory this one used before (the other
	// tests', or this one's run again) is cleared when it is allocated
	// again, whatever Begin does.
	if os.Getenv("HUGEPAGE_TEST_ROOM") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBeginLeavesRoomUntouched$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HUGEPAGE_TEST_ROOM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	end := Begin()
	defer end()
	const room, written = 256 << 20, 16 << 20
	rss0 := residentKiB(t)
	b := make([]byte, 0, room)
	time.Sleep(3 * adviseEvery)
	b = b[:written]
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	if grew := residentKiB(t) - rss0; grew > 4*written>>10 {
		t.Errorf("an array of %d MiB of which %d MiB are written made the process %d MiB larger", room>>20, written>>20, grew>>10)
	}
	b[0] = 2
}

// residentKiB is the process's VmRSS.
func residentKiB(t *testing.T) int64 { return testenv.ProcStatusKiB(t, 0, "VmRSS")[0] }
