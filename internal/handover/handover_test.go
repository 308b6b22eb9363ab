package handover

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// pair returns both ends of a hand-over socket as Conns.
func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, f, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	return a, b
}

// TestOfferWithFiles passes an Offer with descriptors and reads through
// them on the other side: the descriptors are the same open files.
func TestOfferWithFiles(t *testing.T) {
	a, b := pair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	offer := Offer{PID: 1, Version: "v1", ConfigSource: "/etc/ringdns.toml", Config: []byte("[server]\n"),
		Files: []File{{Role: "udp", Listen: "127.0.0.1:53"}, {Role: "tcp", Listen: "127.0.0.1:53"}}, Zones: []string{"example."}}
	if err := a.Send(MsgOffer, offer, []*os.File{r, w}); err != nil {
		t.Fatal(err)
	}
	var got Offer
	f, err := b.Expect(MsgOffer, &got)
	if err != nil {
		t.Fatal(err)
	}
	defer f.CloseFiles()
	if got.ConfigSource != offer.ConfigSource || string(got.Config) != string(offer.Config) || len(got.Files) != 2 || got.Zones[0] != "example." {
		t.Fatalf("offer: got %+v, want %+v", got, offer)
	}
	if len(f.Files) != 2 {
		t.Fatalf("got %d descriptors, want 2", len(f.Files))
	}
	// Written through the received write end, read from the sent read end.
	if _, err := f.Files[1].Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(r, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v through the passed pipe", buf, err)
	}
}

// TestLargePayload sends a configuration larger than a socket buffer.
func TestLargePayload(t *testing.T) {
	a, b := pair(t)
	big := []byte(strings.Repeat("# comment line\n", 200000))
	errc := make(chan error, 1)
	go func() { errc <- a.Send(MsgOffer, Offer{Config: big}, nil) }()
	var got Offer
	if _, err := b.Expect(MsgOffer, &got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got.Config) != len(big) {
		t.Fatalf("got %d bytes, want %d", len(got.Config), len(big))
	}
}

// TestVersionMismatch: a frame of another version is refused by the
// receiver, which answers MsgRefused in its own version, and the sender
// sees the refusal as ErrVersion too.
func TestVersionMismatch(t *testing.T) {
	a, b := pair(t)
	if err := a.send(Version+1, MsgOffer, Offer{}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := b.Expect(MsgOffer, nil)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 2, this side 1") {
		t.Fatalf("receiver: got %v, want a version mismatch naming both versions", err)
	}
	// The sender reads the refusal in the receiver's version (here this
	// process's own, so the MsgRefused branch of Expect reports it).
	_, err = a.Expect(MsgReady, nil)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "speaks hand-over protocol version 1, not 2") {
		t.Fatalf("sender: got %v, want the refusal", err)
	}
}

// TestBadMagic: bytes that are no frame end the exchange with an error
// that says so.
func TestBadMagic(t *testing.T) {
	a, b := pair(t)
	if _, err := a.c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Receive(); err == nil || !strings.Contains(err.Error(), "does not speak the hand-over protocol") {
		t.Fatalf("got %v", err)
	}
}

// TestFailedAndEOF: MsgFailed becomes a PeerError with the peer's text; a
// closed socket between frames is io.EOF.
func TestFailedAndEOF(t *testing.T) {
	a, b := pair(t)
	if err := a.Send(MsgFailed, Failed{Error: "zone example.: bad"}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := b.Expect(MsgReady, nil)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Msg != "zone example.: bad" {
		t.Fatalf("got %v, want the peer's error", err)
	}
	a.Close()
	if _, err := b.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: got %v, want io.EOF", err)
	}
}
