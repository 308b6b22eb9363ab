//go:build !unix

package dataplane

import "time"

// processCPU is not measured here.
func processCPU() time.Duration { return 0 }
