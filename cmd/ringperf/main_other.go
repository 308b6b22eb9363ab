//go:build !linux

// Command ringperf is a DNS load generator over AF_XDP (see main.go). AF_XDP
// exists only on Linux: on this system ringperf says so and exits.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "ringperf: sends and receives through AF_XDP, which needs Linux; this is %s\n", runtime.GOOS)
	os.Exit(1)
}
