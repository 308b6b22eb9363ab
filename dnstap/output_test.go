package dnstap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// collect is the collector's side of a bidirectional Frame Streams
// connection, as fstrm_capture plays it: READY is answered with ACCEPT
// naming accept, then START, data frames until STOP, and FINISH. Each data
// frame is sent on frames.
func collect(c io.ReadWriter, accept string, frames chan<- []byte) error {
	ready, err := ReadControl(c)
	if err != nil {
		return err
	}
	if ready.Type != ControlReady || len(ready.ContentTypes) != 1 || ready.ContentTypes[0] != ContentType {
		return errors.New("no READY with dnstap's content type")
	}
	if _, err := c.Write(AppendControl(nil, ControlAccept, accept)); err != nil {
		return err
	}
	if start, err := ReadControl(c); err != nil || start.Type != ControlStart || len(start.ContentTypes) != 1 || start.ContentTypes[0] != ContentType {
		return errors.New("no START with dnstap's content type")
	}
	for {
		var l [4]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(l[:])
		if n == 0 {
			// The escape: a control frame, which must be STOP.
			if _, err := io.ReadFull(c, l[:]); err != nil {
				return err
			}
			b := make([]byte, binary.BigEndian.Uint32(l[:]))
			if _, err := io.ReadFull(c, b); err != nil {
				return err
			}
			if len(b) != 4 || binary.BigEndian.Uint32(b) != ControlStop {
				return errors.New("a control frame other than STOP")
			}
			_, err := c.Write(AppendControl(nil, ControlFinish))
			return err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		frames <- b
	}
}

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   error
	}{
		{ContentType, nil},
		{"protobuf:other", ErrContentType},
	} {
		w, r := net.Pipe()
		frames := make(chan []byte, 1)
		errc := make(chan error, 1)
		go func() { errc <- collect(r, tc.accept, frames) }()
		err := Handshake(w)
		if !errors.Is(err, tc.want) {
			t.Fatalf("accept %q: Handshake = %v, want %v", tc.accept, err, tc.want)
		}
		if err != nil {
			w.Close()
			r.Close()
			continue
		}
		if _, err := w.Write(AppendFrame(nil, nil, nil, &Message{Type: AuthQuery})); err != nil {
			t.Fatal(err)
		}
		if got := <-frames; !bytes.Equal(got, Append(nil, nil, nil, &Message{Type: AuthQuery})) {
			t.Errorf("collector got %x", got)
		}
		if err := Finish(w); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("collector: %v", err)
		}
		w.Close()
		r.Close()
	}
}

// listenCollector serves one collector at path until the returned
// function is called, which closes the listener and every connection.
func listenCollector(t *testing.T, path string, frames chan<- []byte) (stop func()) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go collect(c, ContentType, frames)
		}
	}()
	return func() {
		ln.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	}
}

// TestSocketReconnect: a Socket connects to a collector, loses it, drops
// frames while it is away, and reconnects, with a fresh handshake, once it
// is back. The waits are bounded at 10 s, far above the backoff of a few
// hundred milliseconds the test runs into, for a loaded machine.
func TestSocketReconnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap.sock")
	frames := make(chan []byte, 64)
	o := NewSocket(path, slog.New(slog.DiscardHandler))
	if err := o.Write(AppendFrame(nil, nil, nil, &Message{Type: AuthQuery})); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("no collector: Write = %v, want ErrNotConnected", err)
	}
	stop := listenCollector(t, path, frames)
	o.Reopen() // retry at once, as a reload does
	frame := func(port uint16) []byte {
		return AppendFrame(nil, nil, nil, &Message{Type: AuthResponse, QueryPort: port})
	}
	if err := o.Write(frame(1)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := <-frames; !bytes.Equal(got, frame(1)[4:]) {
		t.Fatalf("got %x", got)
	}
	stop()
	os.Remove(path)
	deadline := time.Now().Add(10 * time.Second)
	for o.Write(frame(2)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("writes to a collector gone still succeed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if o.Connected() {
		t.Fatal("connected after a failed write")
	}
	if err := o.Write(frame(3)); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("collector away: Write = %v, want ErrNotConnected", err)
	}
	stop = listenCollector(t, path, frames)
	defer stop()
	for o.Write(frame(4)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no reconnection within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := <-frames; !bytes.Equal(got, frame(4)[4:]) {
		t.Fatalf("after reconnecting got %x, want frame 4", got)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readFile reads a unidirectional Frame Streams file: START with dnstap's
// content type, data frames, STOP at the end.
func readFile(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	if c, err := ReadControl(r); err != nil || c.Type != ControlStart || len(c.ContentTypes) != 1 || c.ContentTypes[0] != ContentType {
		t.Fatalf("%s: no START: %+v %v", path, c, err)
	}
	var frames [][]byte
	for {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			t.Fatalf("%s: ends without STOP: %v", path, err)
		}
		n := binary.BigEndian.Uint32(l[:])
		if n == 0 {
			r.Seek(-4, io.SeekCurrent)
			if c, err := ReadControl(r); err != nil || c.Type != ControlStop {
				t.Fatalf("%s: control frame %+v %v, want STOP", path, c, err)
			}
			if r.Len() != 0 {
				t.Fatalf("%s: %d bytes after STOP", path, r.Len())
			}
			return frames
		}
		f := make([]byte, n)
		if _, err := io.ReadFull(r, f); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
}

// TestFileRotate: a file renamed away and reopened ends with STOP, and the
// new one starts with START.
func TestFileRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tap.fstrm")
	os.WriteFile(path, []byte("an old file is truncated"), 0o600)
	o, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := AppendFrame(nil, nil, nil, &Message{Type: AuthQuery, QueryPort: 1})
	b := AppendFrame(nil, nil, nil, &Message{Type: AuthQuery, QueryPort: 2})
	if err := o.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := o.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if f := readFile(t, path+".1"); len(f) != 1 || !bytes.Equal(f[0], a[4:]) {
		t.Errorf("rotated file holds %x", f)
	}
	if f := readFile(t, path); len(f) != 1 || !bytes.Equal(f[0], b[4:]) {
		t.Errorf("new file holds %x", f)
	}
}
