//go:build !linux

// Command nullresponder serves AF_XDP rings (see main.go). AF_XDP exists only
// on Linux: on this system it says so and exits.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "nullresponder: serves AF_XDP rings, which needs Linux; this is %s\n", runtime.GOOS)
	os.Exit(1)
}
