// Package control is the protocol of ringdns's control socket, the one
// ringctl speaks: the requests and their replies, the result of each
// command as a plain struct, a client, and where the socket lives by
// default and what makes it safe to use there.
//
// The protocol is one JSON Request per line from the client and one JSON
// Reply per line from the daemon, any number per connection, over a Unix
// socket created mode 0600. A Reply's Data holds the command's result: a
// Status for status, a []ZoneStatus for zones, a ReloadResult for reload
// and a Stats for stats. The JSON names are the wire format; scripts read
// them through ringctl -json, so they change only by adding.
//
// The daemon's side, controlplane, fills these structs from the data plane
// and serves them; this package imports nothing of the project and nothing
// outside the standard library, so that ringctl, which needs only this,
// links neither the data plane nor cilium/ebpf, Prometheus or TOML.
package control
