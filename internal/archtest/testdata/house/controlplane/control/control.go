// Package control stands in for the control protocol.
package control

// Stats is a reply of the protocol.
type Stats struct{ Queries uint64 }
