// Package controlplane drives the data plane: it reads the TOML
// configuration, loads zones and publishes them to the workers with one
// atomic pointer swap, serves the control socket that ringctl talks to, the
// TCP service (RFC 7766) and the Prometheus metrics. The control protocol
// itself, with its client, is package control, which ringctl imports
// without this one.
//
// Nothing here runs on the per-packet UDP path. Workers load the published
// *dataplane.Snapshot once per batch and never lock; the control plane only
// ever replaces the pointer and reads the workers' counters.
package controlplane
