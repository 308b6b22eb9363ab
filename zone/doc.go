// Package zone turns RFC 1035 master files into immutable, compact,
// index-based tables, and groups them into a Set with longest-suffix
// selection of the zone for a query name.
//
// A Table keeps owner names as lowercase wire format in one byte arena in
// canonical order (RFC 4034 section 6.1), an open-addressing hash index of
// uint32 slots, and each node's RRsets as offsets into flat arenas. Resource
// records are stored as prepared wire-format blocks whose compression
// pointers are patched at answer time. Nothing in a Table holds a Go pointer
// per name or record, so the garbage collector never scans them.
//
// miekg/dns is used here, at build time only; nothing on the answer path
// calls into it.
package zone
