package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// underJournal reports whether w is the stream systemd connected to
// journald: systemd sets JOURNAL_STREAM to that stream's "DEVICE:INODE",
// and the variable is only believed when stderr is that very file, since
// it is inherited by whatever the service starts with its output sent
// elsewhere (sd_journal_stream_fd(3), systemd.exec(5)).
func underJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return dev == strconv.FormatUint(uint64(st.Dev), 10) && ino == strconv.FormatUint(uint64(st.Ino), 10)
}

// Syslog priorities as sd-daemon(3) prefixes them to a line ("<3>"), which
// journald takes for the line's priority.
const (
	sdErr     = 3
	sdWarning = 4
	sdInfo    = 6
	sdDebug   = 7
)

// newLogger makes the daemon's logger: slog's text lines with the time,
// or, when stderr goes to journald, without it (journald stamps each line
// itself, more precisely) and with each line's priority as its sd-daemon
// prefix, so that journalctl -p warning shows the warnings and errors.
func newLogger(stderr io.Writer, journal bool) *slog.Logger {
	if !journal {
		return slog.New(slog.NewTextHandler(stderr, nil))
	}
	mu := new(sync.Mutex)
	inner := slog.NewTextHandler(stderr, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(&journalHandler{inner: inner, w: stderr, mu: mu})
}

// journalHandler writes each record as its inner text handler does, after
// the record's sd-daemon priority prefix. The mutex, shared by the
// handlers WithAttrs and WithGroup derive, keeps a prefix and its line
// together.
type journalHandler struct {
	inner slog.Handler
	w     io.Writer
	mu    *sync.Mutex
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := fmt.Fprintf(h.w, "<%d>", priority(r.Level)); err != nil {
		return err
	}
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), w: h.w, mu: h.mu}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), w: h.w, mu: h.mu}
}

// priority maps a slog level to a syslog priority.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return sdErr
	case l >= slog.LevelWarn:
		return sdWarning
	case l >= slog.LevelInfo:
		return sdInfo
	default:
		return sdDebug
	}
}

// errorPrefix is what starts a line the daemon writes to stderr itself
// before it exits on an error: the error priority under journald.
func errorPrefix(journal bool) string {
	if journal {
		return "<" + strconv.Itoa(sdErr) + ">ringdns: "
	}
	return "ringdns: "
}
