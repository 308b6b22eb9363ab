//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

// main says that the harness needs Linux: it builds network namespaces,
// veth pairs and AF_XDP attachments (main_linux.go).
func main() {
	fmt.Fprintf(os.Stderr, "benchmarks: the harness needs Linux (network namespaces, veth, AF_XDP); this is %s\n", runtime.GOOS)
	os.Exit(1)
}
