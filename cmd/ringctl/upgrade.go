package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ringdns/ringdns/controlplane/control"
)

// upgradeArgs checks ringctl upgrade's one optional argument, the new
// binary, and makes it absolute: the daemon runs it from its own working
// directory, not ringctl's.
func upgradeArgs(req *control.Request, stderr io.Writer) int {
	if len(req.Zones) > 1 {
		fmt.Fprintf(stderr, "ringctl: %s takes at most one argument, the new binary's path (none: the daemon's own path, read from disk again)\n", req.Cmd)
		return 2
	}
	if len(req.Zones) == 1 {
		abs, err := filepath.Abs(req.Zones[0])
		if err != nil {
			fmt.Fprintf(stderr, "ringctl: %s %s: %v\n", req.Cmd, req.Zones[0], err)
			return 1
		}
		req.Zones[0] = abs
	}
	return 0
}

// printUpgrade prints a hand-over's result.
func printUpgrade(w io.Writer, data json.RawMessage) error {
	var r control.UpgradeResult
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	fmt.Fprintf(w, "upgraded: pid %d (version %s) handed %d sockets to pid %d (version %s, %s) over hand-over protocol version %d; UDP unread for %.1f ms\n",
		r.OldPID, r.OldVersion, r.Sockets, r.NewPID, r.NewVersion, r.Binary, r.Protocol, r.PausedMillis)
	return nil
}
