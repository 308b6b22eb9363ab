//go:build linux

// Command nullresponder is the floor of the benchmarks: it serves AF_XDP
// rings with the project's own nic package and turns every DNS query around
// as REFUSED, with no zone lookup at all. Its rate is what bare packet I/O
// costs on a machine; the gap between it and ringdns is the DNS work.
//
// It is a benchmark tool, not a server: it answers everything it is given
// with the query's own bytes and REFUSED.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
)

func main() {
	iface := flag.String("interface", "", "interface to serve with AF_XDP")
	cpu := flag.Int("cpu", -1, "CPU to pin the queue workers to (-1: none)")
	port := flag.Uint("port", 53, "UDP port")
	mode := flag.String("mode", "auto", "XDP attach mode: auto, driver or generic")
	var addrs []netip.Addr
	flag.Func("addr", "server address the XDP program redirects (repeatable; as ringdns does with its listen addresses)", func(s string) error {
		a, err := netip.ParseAddr(s)
		addrs = append(addrs, a)
		return err
	})
	flag.Parse()
	if *iface == "" {
		fmt.Fprintln(os.Stderr, "nullresponder: -interface is required")
		os.Exit(2)
	}
	x, err := nic.OpenXDP(nic.XDPConfig{Interface: *iface, Port: uint16(*port), Mode: *mode, Addrs: addrs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "nullresponder: %v\n", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	answered := make([]uint64, len(x.Ports()))
	// A worker that stops early must stop the whole tool: a benchmark
	// against a responder with a dead queue would measure lost queries.
	failed := make(chan error, len(x.Ports()))
	for i, p := range x.Ports() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := serve(p, *cpu)
			answered[i] = n
			if err != nil {
				failed <- fmt.Errorf("queue %d: %w", p.Queue(), err)
			}
		}()
	}
	fmt.Printf("nullresponder: serving %s, %d queues, %s mode\n", *iface, len(x.Ports()), x.Mode())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	status := 0
	select {
	case <-sig:
	case err := <-failed:
		fmt.Fprintf(os.Stderr, "nullresponder: %v\n", err)
		status = 1
	}
	for _, p := range x.Ports() {
		if st, err := p.Stats(); err == nil {
			fmt.Printf("nullresponder: queue %d: %+v\n", p.Queue(), st)
		}
	}
	x.Close()
	wg.Wait()
	close(failed)
	for err := range failed {
		fmt.Fprintf(os.Stderr, "nullresponder: %v\n", err)
		status = 1
	}
	var total uint64
	for _, n := range answered {
		total += n
	}
	fmt.Printf("nullresponder: answered %d\n", total)
	os.Exit(status)
}

// serve answers one port's queries until the port is closed and returns how
// many it answered, with the error that stopped it early, if any.
func serve(p nic.Port, cpu int) (uint64, error) {
	// The thread stays locked: when the goroutine ends, the runtime retires
	// it with its CPU affinity instead of handing it to other goroutines.
	runtime.LockOSThread()
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return 0, fmt.Errorf("pin to CPU %d: %w", cpu, err)
		}
	}
	pkts := make([]nic.Packet, 64)
	var answered uint64
	for {
		n, err := p.Receive(pkts)
		if errors.Is(err, nic.ErrClosed) {
			return answered, nil
		}
		if err != nil {
			return answered, fmt.Errorf("receive: %w", err)
		}
		if n == 0 {
			// An idle interval: nothing to answer and nothing to hand back.
			continue
		}
		for i := range pkts[:n] {
			// The port hands out DNS payloads and writes the headers back
			// around the replies; it finishes the UDP checksum from Sum.
			pk := &pkts[i]
			h := pk.Buf[:pk.Len]
			if len(h) < 12 || h[2]&0x80 != 0 {
				pk.Len = 0
				continue
			}
			h[2] = h[2]&0x79 | 0x80 // QR=1, keep opcode and RD, clear AA and TC
			h[3] = 5                // REFUSED; RA, Z, AD and CD cleared
			pk.Sum = onessum.Sum(h, 0)
			answered++
		}
		err = p.Send(pkts[:n])
		if errors.Is(err, nic.ErrClosed) {
			return answered, nil
		}
		if err != nil {
			return answered, fmt.Errorf("send: %w", err)
		}
	}
}
