package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// streamID is the JOURNAL_STREAM value systemd would set for f.
func streamID(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino))
}

// TestJournalLogs runs the daemon on a configuration whose only zone
// cannot be loaded, which logs at info and error level and exits 1, with
// stderr a file: when JOURNAL_STREAM names that file, every line carries
// its sd-daemon priority and no time; when it names another file, or is
// unset, the lines are slog's own, with the time.
func TestJournalLogs(t *testing.T) {
	dir := t.TempDir()
	other, err := os.Create(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	args := []string{"-zone", "missing.=" + filepath.Join(dir, "missing.zone"), "-listen", "127.0.0.1:0",
		"-control", filepath.Join(dir, "control.sock")}
	prefixed := regexp.MustCompile(`^<[0-7]>`)
	for _, tc := range []struct {
		name    string
		stream  func(stderr *os.File) string
		journal bool
	}{
		{"journal", func(f *os.File) string { return streamID(t, f) }, true},
		{"other-file", func(*os.File) string { return streamID(t, other) }, false},
		{"unset", func(*os.File) string { return "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, err := os.Create(filepath.Join(dir, tc.name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			t.Setenv("JOURNAL_STREAM", tc.stream(stderr))
			if code := run(args, io.Discard, stderr); code != 1 {
				t.Fatalf("exit status %d, want 1", code)
			}
			b, err := os.ReadFile(stderr.Name())
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			for _, l := range lines {
				if tc.journal && (!prefixed.MatchString(l) || strings.Contains(l, "time=")) {
					t.Errorf("under the journal, line %q lacks its <N> prefix or has a time", l)
				}
				if !tc.journal && (prefixed.MatchString(l) || strings.HasPrefix(l, "level=")) {
					t.Errorf("outside the journal, line %q has a priority prefix or no time", l)
				}
			}
			if !tc.journal {
				return
			}
			for _, want := range []string{"<6>level=INFO msg=starting", "<3>level=ERROR", "<3>ringdns: "} {
				if !strings.Contains(text, want) {
					t.Errorf("no line with %q in\n%s", want, text)
				}
			}
		})
	}
}
