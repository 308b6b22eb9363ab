package controlplane

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Keyring holds the configured TSIG keys (RFC 8945) and verifies and signs
// messages with them. It is read-only after NewKeyring and safe for
// concurrent use.
//
// A received message is checked with Verify, which says which key signed
// it, or which TSIG error its reply must carry; the reply, or each message
// of a reply stream such as an AXFR, is signed by the Signer that Verify's
// result gives. Verification is built on miekg/dns's TsigVerifyWithProvider;
// signing works on packed messages, so that a transfer's messages are
// signed as they are written without being unpacked into miekg/dns's form.
type Keyring struct {
	keys map[string]TSIGKey
	// now is the clock, replaced in tests.
	now func() time.Time
}

// NewKeyring makes a keyring of the keys of a normalised configuration
// (Config.TSIGKeys).
func NewKeyring(keys map[string]TSIGKey) *Keyring {
	return &Keyring{keys: keys, now: time.Now}
}

// Key returns the key of a canonical name.
func (k *Keyring) Key(name string) (TSIGKey, bool) {
	if k == nil {
		return TSIGKey{}, false
	}
	key, ok := k.keys[name]
	return key, ok
}

// TSIGFudge is the fudge of the TSIG records ringdns writes: the seconds of
// clock difference it allows, the value RFC 8945 section 10 recommends.
const TSIGFudge = 300

// TSIGRequest is what Verify found in a received message.
type TSIGRequest struct {
	// Signed is true when the message carried a TSIG record, valid or not.
	Signed bool
	// Key is the canonical name of the key whose valid TSIG signed the
	// message; "" when unsigned or when verification failed.
	Key string
	// Rcode is the rcode the reply must have because of the TSIG:
	// dns.RcodeSuccess when the message may be processed (unsigned, or
	// signed and valid), dns.RcodeNotAuth when the signature failed (Error
	// says how), dns.RcodeFormatError when a TSIG record is not the last
	// record of the message or there is more than one (RFC 8945 section
	// 5.1), or the TSIG record is malformed.
	Rcode int
	// Error is the TSIG error of the reply's TSIG record: 0,
	// dns.RcodeBadKey, dns.RcodeBadSig, dns.RcodeBadTime or
	// dns.RcodeBadTrunc.
	Error uint16
	// Body is the message without its TSIG record (ARCOUNT one less), a
	// copy, for the code that answers it; the whole message when unsigned.
	// Nil when Rcode is FORMERR.
	Body []byte

	tsig *dns.TSIG // the received TSIG record, nil when unsigned
	mac  []byte    // its MAC, the request MAC of the reply's digest
}

// Reason says in words why verification failed, for logs; "" when it did
// not.
func (r *TSIGRequest) Reason() string {
	switch {
	case r.Rcode == dns.RcodeFormatError:
		return "TSIG record malformed, not last or not alone (FORMERR)"
	case r.Error != 0:
		name := ""
		if r.tsig != nil {
			name = " " + strings.ToLower(r.tsig.Hdr.Name)
		}
		return "TSIG" + name + ": " + tsigErrorName(r.Error)
	}
	return ""
}

// TSIGErrorName is the mnemonic of a TSIG error or rcode for metrics:
// "BADKEY", "BADSIG", "BADTIME", "BADTRUNC", "FORMERR".
func TSIGErrorName(r *TSIGRequest) string {
	if r.Rcode == dns.RcodeFormatError {
		return "FORMERR"
	}
	return tsigErrorName(r.Error)
}

// tsigErrorName is the mnemonic of a TSIG error: 16 is BADSIG there, not
// BADVERS.
func tsigErrorName(e uint16) string {
	if e == dns.RcodeBadSig {
		return "BADSIG"
	}
	return RcodeName(int(e))
}

// errTSIGPlacement marks a TSIG record that is not last or not alone.
var errTSIGPlacement = errors.New("TSIG record not the last record, or not the only one")

// Verify checks the TSIG record of msg, a whole received message (it is
// not modified), as RFC 8945 section 5.2 orders: the record must be the
// last of the additional section and the only one (else FORMERR); its
// key name and algorithm must be a configured key's (else BADKEY); its MAC
// must verify (else BADSIG), be no shorter than RFC 8945 section 5.2.2.1
// allows (else FORMERR) and not truncated (ringdns accepts only whole MACs:
// else BADTRUNC); and the time signed must be within the fudge of the
// clock (else BADTIME), checked after the MAC so that an unsigned message
// cannot probe the clock. A message without a TSIG record is unsigned and
// valid. A message that does not parse at all is FORMERR.
func (k *Keyring) Verify(msg []byte) TSIGRequest {
	off, t, err := findTSIG(msg)
	if err != nil {
		return TSIGRequest{Signed: off >= 0, Rcode: dns.RcodeFormatError}
	}
	if t == nil {
		return TSIGRequest{Rcode: dns.RcodeSuccess, Body: append([]byte(nil), msg...)}
	}
	r := TSIGRequest{Signed: true, tsig: t, Rcode: dns.RcodeNotAuth}
	body := append([]byte(nil), msg[:off]...)
	binary.BigEndian.PutUint16(body[10:], binary.BigEndian.Uint16(body[10:])-1)
	r.Body = body

	name := strings.ToLower(t.Hdr.Name)
	key, ok := k.Key(name)
	if !ok || !strings.EqualFold(dns.CanonicalName(t.Algorithm), key.Algorithm) {
		// RFC 8945 section 5.2.1: an unknown key, or a known one with
		// another algorithm, is BADKEY.
		r.Error = dns.RcodeBadKey
		return r
	}
	p, err := newHMACProvider(key)
	if err != nil {
		r.Error = dns.RcodeBadKey
		return r
	}
	mac, err := hex.DecodeString(t.MAC)
	if err != nil {
		r.Rcode = dns.RcodeFormatError
		return r
	}
	full := p.size()
	// RFC 8945 section 5.2.2.1: a MAC longer than the hash, or shorter
	// than both half of it and 10 bytes, is FORMERR.
	if len(mac) > full || len(mac) < max(10, full/2) {
		r.Rcode = dns.RcodeFormatError
		return r
	}
	err = dns.TsigVerifyWithProvider(append([]byte(nil), msg...), p, "", false)
	// miekg/dns checks the time against the real clock; the keyring's
	// own clock decides here (it is the real one outside tests), so ErrTime
	// is read as a valid MAC and the time checked below.
	switch {
	case err == nil || errors.Is(err, dns.ErrTime):
	case errors.Is(err, dns.ErrSig):
		r.Error = dns.RcodeBadSig
		return r
	default:
		r.Rcode = dns.RcodeFormatError
		return r
	}
	r.mac = mac
	r.Key = name
	if len(mac) < full {
		// Verified, but truncated: ringdns's policy is whole MACs, and RFC
		// 8945 section 5.2.2.1 makes that BADTRUNC, answered signed.
		r.Error = dns.RcodeBadTrunc
		return r
	}
	now := uint64(k.now().Unix())
	d := now - t.TimeSigned
	if now < t.TimeSigned {
		d = t.TimeSigned - now
	}
	if d > uint64(t.Fudge) {
		r.Error = dns.RcodeBadTime
		return r
	}
	r.Rcode = dns.RcodeSuccess
	return r
}

// findTSIG walks msg and returns the offset and content of its TSIG
// record, nil when it has none. It fails when msg does not parse or when
// a TSIG record is anywhere but last in the additional section; the
// offset is then -1 unless a TSIG record was seen.
func findTSIG(msg []byte) (int, *dns.TSIG, error) {
	if len(msg) < 12 {
		return -1, nil, errors.New("message shorter than a header")
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	for i := 0; i < qd; i++ {
		_, o, err := dns.UnpackDomainName(msg, off)
		if err != nil || o+4 > len(msg) {
			return -1, nil, errors.New("question does not parse")
		}
		off = o + 4
	}
	seen := -1
	var t *dns.TSIG
	total := an + ns + ar
	for i := 0; i < total; i++ {
		start := off
		rr, o, err := dns.UnpackRR(msg, off)
		if err != nil {
			return seen, nil, fmt.Errorf("record %d does not parse: %w", i+1, err)
		}
		off = o
		if ts, ok := rr.(*dns.TSIG); ok {
			if seen >= 0 || i != total-1 || i < an+ns {
				return start, nil, errTSIGPlacement
			}
			seen, t = start, ts
		}
	}
	if t != nil && off != len(msg) {
		return seen, nil, errTSIGPlacement
	}
	return seen, t, nil
}

// Signer signs the reply, or each message of the reply stream, to one
// request (RFC 8945 section 5.3). It is nil for an unsigned request, whose
// replies are not signed; a nil Signer's Sign returns the message as it
// is. A Signer is used by one goroutine.
type Signer struct {
	key   TSIGKey
	p     *hmacProvider // nil: the error reply is unsigned (BADKEY, BADSIG)
	prior []byte        // the request MAC, then the MAC of the last message signed
	n     int           // messages signed
	// digest is the buffer the data each MAC covers is assembled in,
	// kept from one message to the next: a transfer signs messages of up
	// to 64 KiB, and a new buffer for each was most of what a signed AXFR
	// of the root zone allocated (1.6 of 1.7 MB).
	digest []byte
	err    uint16
	time   uint64 // request's time signed, for a BADTIME reply
	now    func() time.Time
}

// Signer returns the signer of the replies to r, nil when r was unsigned
// or malformed (a FORMERR reply is not signed).
func (k *Keyring) Signer(r *TSIGRequest) *Signer {
	if r.tsig == nil || r.Rcode == dns.RcodeFormatError {
		return nil
	}
	s := &Signer{err: r.Error, time: r.tsig.TimeSigned, now: k.now,
		key: TSIGKey{Name: strings.ToLower(r.tsig.Hdr.Name), Algorithm: dns.CanonicalName(r.tsig.Algorithm)}}
	if r.Error == dns.RcodeBadKey || r.Error == dns.RcodeBadSig {
		// RFC 8945 section 5.3.2: an error about the key or the MAC is
		// answered unsigned, with an empty MAC.
		return s
	}
	key, _ := k.Key(r.Key)
	p, err := newHMACProvider(key)
	if err != nil {
		return s
	}
	s.key, s.p, s.prior = key, p, r.mac
	return s
}

// SignerFor returns a signer for a message that ringdns starts (a NOTIFY,
// a transfer request) with the named key, and whose replies are checked
// with VerifyReply.
func (k *Keyring) SignerFor(name string) (*Signer, error) {
	key, ok := k.Key(name)
	if !ok {
		return nil, fmt.Errorf("TSIG key %s is not configured", name)
	}
	p, err := newHMACProvider(key)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, p: p, now: k.now}, nil
}

// Sign appends a TSIG record to msg, a packed message whose ID is the
// request's, and returns the longer message. The first message of a reply
// is signed over the request MAC, the message and every TSIG variable; each
// later one of a stream (the messages of an AXFR or IXFR) over the previous
// message's MAC, the message and the timers only, as RFC 8945 section 5.3.1
// has it, every message signed. An error reply for BADKEY or BADSIG gets a
// TSIG record without a MAC; a BADTIME reply gets the server's time in its
// other data (RFC 8945 section 5.2.3).
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	if s == nil {
		return msg, nil
	}
	if len(msg) < 12 {
		return nil, errors.New("signing a message shorter than a header")
	}
	now := uint64(s.now().Unix())
	t := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: s.key.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  s.key.Algorithm,
		TimeSigned: now,
		Fudge:      TSIGFudge,
		OrigId:     binary.BigEndian.Uint16(msg),
		Error:      s.err,
	}
	if s.err == dns.RcodeBadTime {
		// The request's time in Time Signed, ours in Other Data, so that
		// the client learns how far apart the clocks are.
		t.TimeSigned = s.time
		var other [6]byte
		put48(other[:], now)
		t.OtherLen, t.OtherData = 6, hex.EncodeToString(other[:])
	}
	if s.p != nil {
		s.digest = tsigDigest(s.digest, s.prior, msg, t, s.n > 0)
		mac := s.p.sum(s.digest)
		t.MAC, t.MACSize = hex.EncodeToString(mac), uint16(len(mac))
		s.prior = mac
	}
	s.n++
	buf := make([]byte, dns.Len(t)+16)
	n, err := dns.PackRR(t, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing TSIG: %w", err)
	}
	out := append(msg, buf[:n]...)
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	return out, nil
}

// MAC is the MAC of the last message signed, hex-encoded as miekg/dns
// spells a request MAC.
func (s *Signer) MAC() string {
	if s == nil {
		return ""
	}
	return hex.EncodeToString(s.prior)
}

// tsigDigest is what the MAC of msg covers (RFC 8945 sections 4.3.3 and
// 5.3.1): the prior MAC with its length when there is one, the message
// (whose ID is the original ID and whose ARCOUNT does not count the TSIG),
// and either every TSIG variable or, for the later messages of a stream,
// the timers alone. It is assembled in dst[:0], grown when short.
func tsigDigest(dst, prior, msg []byte, t *dns.TSIG, timersOnly bool) []byte {
	d := dst[:0]
	if prior != nil {
		d = binary.BigEndian.AppendUint16(d, uint16(len(prior)))
		d = append(d, prior...)
	}
	d = append(d, msg...)
	binary.BigEndian.PutUint16(d[len(d)-len(msg):], t.OrigId)
	if !timersOnly {
		d = appendName(d, t.Hdr.Name)
		d = binary.BigEndian.AppendUint16(d, dns.ClassANY)
		d = binary.BigEndian.AppendUint32(d, 0)
		d = appendName(d, t.Algorithm)
	}
	var tm [6]byte
	put48(tm[:], t.TimeSigned)
	d = append(d, tm[:]...)
	d = binary.BigEndian.AppendUint16(d, t.Fudge)
	if !timersOnly {
		d = binary.BigEndian.AppendUint16(d, t.Error)
		other, _ := hex.DecodeString(t.OtherData)
		d = binary.BigEndian.AppendUint16(d, uint16(len(other)))
		d = append(d, other...)
	}
	return d
}

// appendName appends a domain name in canonical (lowercase, uncompressed)
// wire form.
func appendName(d []byte, name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(name), buf, 0, nil, false)
	if err != nil {
		// Key and algorithm names were checked by normalizeKeys or came
		// from a message that unpacked; neither fails to pack.
		panic(fmt.Sprintf("packing TSIG name %q: %v", name, err))
	}
	return append(d, buf[:n]...)
}

func put48(b []byte, v uint64) {
	b[0], b[1] = byte(v>>40), byte(v>>32)
	binary.BigEndian.PutUint32(b[2:], uint32(v))
}

// hmacProvider is a dns.TsigProvider for one key: it computes the HMAC of
// the key's algorithm and accepts a MAC truncated to no less than RFC 8945
// allows (Verify reports the truncation).
type hmacProvider struct {
	secret []byte
	newH   func() hash.Hash
}

func newHMACProvider(key TSIGKey) (*hmacProvider, error) {
	secret, err := decodeSecret(key.Secret)
	if err != nil {
		return nil, fmt.Errorf("TSIG key %s: %w", key.Name, err)
	}
	p := &hmacProvider{secret: secret}
	switch dns.CanonicalName(key.Algorithm) {
	case dns.HmacSHA1:
		p.newH = sha1.New
	case dns.HmacSHA224:
		p.newH = sha256.New224
	case dns.HmacSHA256:
		p.newH = sha256.New
	case dns.HmacSHA384:
		p.newH = sha512.New384
	case dns.HmacSHA512:
		p.newH = sha512.New
	default:
		return nil, fmt.Errorf("TSIG key %s: algorithm %s not supported", key.Name, key.Algorithm)
	}
	return p, nil
}

func (p *hmacProvider) size() int { return p.newH().Size() }

func (p *hmacProvider) sum(msg []byte) []byte {
	h := hmac.New(p.newH, p.secret)
	h.Write(msg)
	return h.Sum(nil)
}

// Generate implements dns.TsigProvider.
func (p *hmacProvider) Generate(msg []byte, _ *dns.TSIG) ([]byte, error) { return p.sum(msg), nil }

// Verify implements dns.TsigProvider: the MAC, whole or truncated, must be
// a prefix of the HMAC of msg.
func (p *hmacProvider) Verify(msg []byte, t *dns.TSIG) error {
	mac, err := hex.DecodeString(t.MAC)
	if err != nil {
		return err
	}
	sum := p.sum(msg)
	if len(mac) == 0 || len(mac) > len(sum) || !hmac.Equal(sum[:len(mac)], mac) {
		return dns.ErrSig
	}
	return nil
}

// VerifyReply checks the TSIG of a reply to a message that s signed (a
// NOTIFY's reply, or each message of a transfer in, in order); it updates
// the prior MAC so that the next message of a stream is checked over it.
// Unlike Verify, a reply must be signed, with s's key.
func (s *Signer) VerifyReply(msg []byte) error {
	_, t, err := findTSIG(msg)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("reply not signed with TSIG key %s", s.key.Name)
	}
	if !strings.EqualFold(t.Hdr.Name, s.key.Name) {
		return fmt.Errorf("reply signed with key %s, not %s", t.Hdr.Name, s.key.Name)
	}
	if t.Error != 0 {
		return fmt.Errorf("reply carries TSIG error %s", tsigErrorName(t.Error))
	}
	err = dns.TsigVerifyWithProvider(append([]byte(nil), msg...), s.p, hex.EncodeToString(s.prior), s.n > 1)
	if err != nil {
		return fmt.Errorf("reply's TSIG (key %s): %w", s.key.Name, err)
	}
	s.prior, _ = hex.DecodeString(t.MAC)
	s.n++
	return nil
}

// decodeSecret decodes a base64 secret as the configuration holds it.
func decodeSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("secret is not base64: %w", err)
	}
	return b, nil
}

// TSIGErrorReply builds the reply to a message whose TSIG failed
// verification: the header (ID, opcode, RD) and question of msg, QR and AA
// clear, the rcode of r (NOTAUTH or FORMERR), and for NOTAUTH the TSIG
// record with r's error, signed or not as RFC 8945 section 5.3.2 says.
func (k *Keyring) TSIGErrorReply(msg []byte, r *TSIGRequest) ([]byte, error) {
	rep, err := bareReply(msg, r.Rcode)
	if err != nil {
		return nil, err
	}
	return k.Signer(r).Sign(rep)
}

// bareReply is the reply to msg with rcode and no records: its ID, opcode
// and RD, QR set, and its question when it has one that parses.
func bareReply(msg []byte, rcode int) ([]byte, error) {
	if len(msg) < 12 {
		return nil, errors.New("message shorter than a header")
	}
	rep := make([]byte, 12, 512)
	copy(rep, msg[:4])
	rep[2] = 0x80 | msg[2]&0x79 // QR, opcode, RD
	rep[3] = byte(rcode & 0xF)
	if binary.BigEndian.Uint16(msg[4:]) == 1 {
		if name, o, err := dns.UnpackDomainName(msg, 12); err == nil && o+4 <= len(msg) {
			// The name is packed again rather than copied: a compression
			// pointer in it would point elsewhere in the reply.
			buf := make([]byte, 256)
			if n, err := dns.PackDomainName(name, buf, 0, nil, false); err == nil {
				rep = append(rep, buf[:n]...)
				rep = append(rep, msg[o:o+4]...)
				rep[5] = 1
			}
		}
	}
	return rep, nil
}
