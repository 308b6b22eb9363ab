package controlplane

import (
	"github.com/ringdns/ringdns/zone"
)

// The zonemd settings of a zone (ZoneConfig.ZONEMD).
const (
	zonemdVerify  = "verify"
	zonemdRequire = "require"
	zonemdIgnore  = "ignore"
)

// checkZONEMD applies a zone's zonemd setting to a version just loaded
// from its file or transferred in, before it may be published (RFC 8976
// section 4): "verify" refuses a version whose ZONEMD is present and does
// not verify, "require" also one without a ZONEMD of a supported scheme
// and hash algorithm, "ignore" checks nothing. The error is a
// *zone.LoadError naming the zone and its file, which says why; the
// version served before keeps serving.
func checkZONEMD(z *zone.Zone, mode string) error {
	if mode == zonemdIgnore {
		return nil
	}
	res, err := z.VerifyZONEMD()
	if err != nil {
		return &zone.LoadError{Origin: z.Origin(), File: z.File(), Msg: "ZONEMD cannot be verified: " + err.Error(), Err: err}
	}
	switch {
	case res.Status == zone.ZONEMDFailed:
		return &zone.LoadError{Origin: z.Origin(), File: z.File(), Msg: "ZONEMD verification failed (RFC 8976): " + res.Reason}
	case mode == zonemdRequire && res.Status != zone.ZONEMDVerified:
		return &zone.LoadError{Origin: z.Origin(), File: z.File(),
			Msg: "zonemd = \"require\" and the zone has no usable ZONEMD record (" + res.String() + "); add one (ldns-signzone -z, dnssec-signzone) or set zonemd = \"verify\""}
	}
	return nil
}

// zonemdState is the ZONEMD state of a served version, as zone status and
// `ringdns check` report it: "verified sha384", "absent", "unsupported:
// ..." (a failed one is never served, and its load error says why), or
// "ignored" under zonemd = "ignore".
func zonemdState(z *zone.Zone, mode string) string {
	if mode == zonemdIgnore {
		return "ignored"
	}
	res, err := z.VerifyZONEMD()
	if err != nil {
		return "error: " + err.Error()
	}
	return res.String()
}
