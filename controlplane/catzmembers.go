package controlplane

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/ringdns/ringdns/zone"
)

// This file serves the member zones of catalog zones (RFC 9432), as a
// consumer: a secondary zone with catalog-members set is read, at each new
// version published (loaded from its copy at start, or transferred), for
// the zones it lists, and each of them is served as a secondary zone of
// its own, transferred from the catalog's primaries, its copy kept in the
// catalog-members directory.

// catalogState is the state of a catalog zone whose members are served.
// Its fields are guarded by the catalog's mu.
type catalogState struct {
	cfg *ZoneConfig // the catalog's [[zone]], which the members inherit
	// seen is the catalog's version last reconciled.
	seen *zone.Zone
	// members counts the members served; lastErr says why the last
	// version changed nothing ("" when it was taken).
	members int
	lastErr string
}

// reconcileCatalogs brings the zones served in line with the member list
// of every catalog zone whose version changed since it was last read.
// c.mu must be held; it is called by publish, so the result is in the
// snapshot about to be built.
func (c *Catalog) reconcileCatalogs() {
	for _, e := range c.entries {
		if e.catz == nil || e.cur == nil || e.catz.seen == e.cur {
			continue
		}
		e.catz.seen = e.cur
		c.reconcileCatalog(e)
	}
}

// reconcileCatalog applies the member list of cat's version served (RFC
// 9432 section 5): members not served yet are added, as secondary zones
// answered SERVFAIL until their first transfer (their copy on disk is
// served at once when there is one, after a restart); members no longer
// listed are removed; a member whose unique ID changed is reset (section
// 5.4: its copy and state dropped, transferred afresh by AXFR). A member
// whose name is a zone served otherwise (configured, or a member of
// another catalog) is ignored with a warning. A catalog that cannot be
// read (ErrCatalogVersion) changes nothing. c.mu must be held.
func (c *Catalog) reconcileCatalog(cat *zoneEntry) {
	cz := cat.catz
	members, warnings, err := catalogMembers(cat.cur)
	for _, w := range warnings {
		c.log.Warn("catalog zone: entry ignored", "catalog", cat.origin, "warning", w)
	}
	if err != nil {
		cz.lastErr = "catalog not processed, members unchanged: " + err.Error()
		if errors.Is(err, ErrCatalogVersion) {
			c.log.Error("catalog zone of a version this consumer does not understand: its members are left as they were",
				"catalog", cat.origin, "serial", cat.cur.Serial(), "err", err)
		} else {
			c.log.Error("catalog zone unreadable: its members are left as they were", "catalog", cat.origin, "err", err)
		}
		return
	}
	cz.lastErr = ""
	if max := cz.cfg.CatalogMembersMax; len(members) > max {
		c.log.Warn("catalog zone lists more members than catalog-members-max; those past it, in name order, are not served",
			"catalog", cat.origin, "members", len(members), "catalog_members_max", max, "first_ignored", members[max].Origin)
		cz.lastErr = "members past catalog-members-max ignored, from " + members[max].Origin
		members = members[:max]
	}
	if err := os.MkdirAll(cz.cfg.CatalogMembers, 0o755); err != nil {
		cz.lastErr = "catalog-members directory: " + err.Error()
		c.log.Error("cannot create the directory of the catalog's member zones; members unchanged",
			"catalog", cat.origin, "dir", cz.cfg.CatalogMembers, "err", err)
		return
	}
	want := make(map[string]catalogMember, len(members))
	for _, m := range members {
		want[m.Origin] = m
	}

	// Members no longer listed, or listed under a new unique ID, go.
	entries := make([]*zoneEntry, 0, len(c.entries)+len(members))
	served := make(map[string]*zoneEntry, len(c.entries)+len(members))
	var removed []*zoneEntry
	for _, e := range c.entries {
		if e.catalog == cat.origin {
			if m, ok := want[e.origin]; !ok || m.ID != e.memberID {
				removed = append(removed, e)
				continue
			}
		}
		entries = append(entries, e)
		served[e.origin] = e
	}

	added, n := 0, 0
	for _, m := range members {
		if e := served[m.Origin]; e != nil {
			switch {
			case e.catalog == cat.origin:
				n++
			case e.catalog != "":
				c.log.Warn("catalog member ignored: it is a member of another catalog zone", "catalog", cat.origin,
					"member", m.Origin, "other_catalog", e.catalog)
			default:
				c.log.Warn("catalog member ignored: it is a zone configured here", "catalog", cat.origin, "member", m.Origin)
			}
			continue
		}
		e := c.newMember(cat, m)
		c.loadEntry(e)
		entries = append(entries, e)
		served[m.Origin] = e
		added++
		n++
	}
	cz.members = n

	for _, e := range removed {
		e.gone = true
		reset := false
		if m, ok := want[e.origin]; ok && m.ID != e.memberID {
			reset = true
		}
		c.log.Info("catalog member removed", "catalog", cat.origin, "member", e.origin, "id", e.memberID, "reset", reset)
		c.dropMember(e)
	}
	c.emu.Lock()
	c.entries = entries
	c.emu.Unlock()
	// The new members' loops start once they are among the entries, so
	// that a NOTIFY or ringctl finds them.
	for _, e := range entries[len(entries)-added:] {
		c.startSecondary(e)
	}
	c.log.Info("catalog zone read", "catalog", cat.origin, "serial", cat.cur.Serial(), "members", n,
		"added", added, "removed", len(removed))
}

// newMember makes the entry of member m of catalog cat: a secondary zone
// with the catalog's settings, its copy in the catalog-members directory.
func (c *Catalog) newMember(cat *zoneEntry, m catalogMember) *zoneEntry {
	cfg := cat.catz.cfg
	e := &zoneEntry{origin: m.Origin, file: memberFile(cfg.CatalogMembers, m), zonemd: cfg.ZONEMD,
		catalog: cat.origin, memberID: m.ID}
	e.sec = newSecondary(cfg)
	e.sec.placeholder = placeholderZone(m.Origin, c.log)
	c.log.Info("catalog member added", "catalog", cat.origin, "member", m.Origin, "id", m.ID, "file", e.file)
	if c.onAdd != nil {
		c.onAdd(e.origin, e.file)
	}
	return e
}

// dropMember stops a removed member's loop and deletes its copy on disk
// and its journal once the loop has ended, so that a transfer in flight
// cannot write the copy back. c.mu must be held; the deletion runs
// without it, since the loop may be waiting for it.
func (c *Catalog) dropMember(e *zoneEntry) {
	if c.onRemove != nil {
		c.onRemove(e.origin)
	}
	done := e.sec.done
	if e.sec.stop != nil {
		e.sec.stop()
	}
	remove := func() {
		for _, f := range []string{e.file, e.file + ".journal"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("cannot delete a removed catalog member's file", "member", e.origin, "file", f, "err", err)
			}
		}
	}
	if done == nil {
		remove()
		return
	}
	go func() {
		<-done
		c.mu.Lock()
		defer c.mu.Unlock()
		// The member may have been listed again meanwhile, with the same
		// unique ID and so the same file: that copy is its own.
		c.emu.RLock()
		defer c.emu.RUnlock()
		for _, o := range c.entries {
			if o.file == e.file {
				return
			}
		}
		remove()
	}()
}

// memberFile is the path of member m's copy: its name and unique ID, so
// that a reset member (a new ID) never reads the old copy, with every
// byte outside [a-z0-9._-] escaped as %XX. A name too long for a file
// name is replaced by its SHA-256.
func memberFile(dir string, m catalogMember) string {
	var b strings.Builder
	for _, s := range []string{m.Origin, m.ID} {
		for i := 0; i < len(s); i++ {
			ch := s[i]
			switch {
			case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.' && i > 0:
				b.WriteByte(ch)
			default:
				b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{ch})))
			}
		}
	}
	name := b.String() + ".zone"
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(m.Origin + "\x00" + m.ID))
		name = hex.EncodeToString(sum[:]) + ".zone"
	}
	return filepath.Join(dir, name)
}

// memberConfig returns the configuration a member zone inherits from its
// catalog (allow-transfer, notify), or nil when origin is no member.
func (c *Catalog) memberConfig(origin string) *ZoneConfig {
	c.emu.RLock()
	defer c.emu.RUnlock()
	catalog := ""
	for _, e := range c.entries {
		if e.origin == origin {
			catalog = e.catalog
		}
	}
	if catalog == "" {
		return nil
	}
	for _, e := range c.entries {
		if e.origin == catalog && e.catz != nil {
			return e.catz.cfg
		}
	}
	return nil
}

// catalogCount is a catalog zone's members served, for the metrics.
type catalogCount struct {
	origin string
	n      int
}

// catalogCounts reports the members served of every catalog zone.
func (c *Catalog) catalogCounts() []catalogCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []catalogCount
	for _, e := range c.entries {
		if e.catz != nil {
			out = append(out, catalogCount{e.origin, e.catz.members})
		}
	}
	return out
}
