// Package configs holds the example configurations and the zone they
// serve. The default configuration and its zone are embedded in the ringdns
// binary, which serves them when started with no arguments.
package configs

import "embed"

// Default is the file system of the embedded default configuration:
// DefaultConfig and the zone files it names.
//
//go:embed default.toml example.zone
var Default embed.FS

// DefaultConfig is the name of the default configuration within Default.
const DefaultConfig = "default.toml"
