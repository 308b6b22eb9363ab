//go:build !linux

package main

// niceEnv asks for no lowered start: nice values per thread, which the new
// binary's lowered start sets (nice_linux.go), are Linux's.
func niceEnv() []string { return nil }

// setAllNice does nothing: niceEnv asks for no lowered start here.
func setAllNice(nice int) error { return nil }

// lowerAfterHandover does nothing: nice values per thread are Linux's.
func lowerAfterHandover() error { return nil }
