package hugepage

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
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
		if found != c.found || found && !equal(run, c.want) {
			t.Errorf("at %#x: %v %v, want %v %v", c.at, run, found, c.want, c.found)
		}
	}
}

func equal(a, b []mapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBegin checks that memory a load touches while begun comes in huge
// pages, and that the advice is withdrawn at the end.
func TestBegin(t *testing.T) {
	if !madviseMode() {
		t.Skip("transparent huge pages are not in madvise mode here (/sys/kernel/mm/transparent_hugepage/enabled): Begin does nothing")
	}
	end := Begin(96 << 20)
	b := make([]byte, 32<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	at := reflect.ValueOf(b).Pointer()
	flags, huge := smapsOf(t, at)
	if !strings.Contains(flags, " hg") || huge < 16<<10 {
		t.Errorf("during a load: mapping flags %q, %d KiB in huge pages; want hg and at least 16 MiB", flags, huge)
	}
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
