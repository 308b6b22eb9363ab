//go:build !linux

package loadgen

// preciseTimers does nothing where timer slack is not a thread setting.
func preciseTimers() {}
